"""Non-critical events are held in their outbox while the saga is behind, and let go after (DESIGN.md §5)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from messaging.api import redis_client
from messaging.event_hold import EventHold, critical_lag_s, holdable_message_types
from messaging.metrics_view import backlog_by_module
from messaging.publisher import publish_to
from messaging.relay import Relay, drain_batch, outbox_backlog, release_held
from messaging.subscriptions import Subscription
from orders.contracts import ORDER_CONFIRMED, START_SAGA
from tests.messaging.helpers import Clock, add_pings, ping_envelope, write_row
from tests.probe.models import ProbeOutbox
from tests.probe.tasks import PING

pytestmark = pytest.mark.django_db(databases="__all__")


def _start_saga_row(key: str) -> ProbeOutbox:
    """A message with a critical consumer (the saga's, on saga.eu), written to the probe's outbox."""
    return write_row(START_SAGA, key)


def _queued(queue: str) -> list[str]:
    """Message ids waiting in ``queue``, oldest first."""
    raws = reversed(redis_client().lrange(queue, 0, -1))
    return [json.loads(raw)["headers"]["argsrepr"].split()[-1] for raw in raws]


def test_only_types_whose_every_consumer_is_non_critical_can_be_held(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PING in holdable_message_types(("events",))
    assert ORDER_CONFIRMED in holdable_message_types(("events",))  # fraud's customer history
    assert START_SAGA not in holdable_message_types(("events",))
    assert holdable_message_types(()) == ()

    mixed = [
        Subscription("shop.Mixed", "analytics.count", "events"),
        Subscription("shop.Mixed", "orders.react", "saga.{region}"),
        Subscription("shop.Quiet", "analytics.quiet", "events"),
    ]
    monkeypatch.setattr("messaging.event_hold.all_subscriptions", lambda: mixed)
    assert holdable_message_types(("events",)) == ("shop.Quiet",)


def test_a_held_row_stays_in_its_outbox_while_its_critical_neighbour_goes_out() -> None:
    saga = _start_saga_row("order-1")
    (ping,) = add_pings(1, prefix="held")

    assert drain_batch(ProbeOutbox, 10, hold=(PING,)) == 2

    assert _queued("saga.eu") == [str(saga.pk)]
    assert _queued("events") == []
    ping.refresh_from_db()
    saga.refresh_from_db()
    assert (ping.published_at, ping.held_at is not None) == (None, True)
    assert (saga.published_at is not None, saga.held_at) == (True, None)
    # Held on purpose: not a backlog of the relay, and not claimed again while held.
    assert outbox_backlog(ProbeOutbox)[0] == 0
    assert outbox_backlog(ProbeOutbox, held=True)[0] == 1
    assert backlog_by_module(held=True)["default"][0] == 1
    assert drain_batch(ProbeOutbox, 10) == 0

    assert release_held(ProbeOutbox, 10) == 1

    assert _queued("events") == [str(ping.pk)]
    ping.refresh_from_db()
    assert ping.published_at is not None
    assert ping.held_at is not None  # kept, as the record that it waited
    assert outbox_backlog(ProbeOutbox, held=True)[0] == 0
    assert release_held(ProbeOutbox, 10) == 0


def test_without_pressure_nothing_is_held() -> None:
    (ping,) = add_pings(1, prefix="free")

    assert drain_batch(ProbeOutbox, 10) == 1

    assert _queued("events") == [str(ping.pk)]
    ping.refresh_from_db()
    assert ping.held_at is None


def test_the_switch_holds_above_the_lag_and_lets_go_below_half_of_it() -> None:
    clock, lag = Clock(), [0.0]
    hold = EventHold(holdable=(PING,), hold_lag_s=2.0, check_every_s=0.5, read_lag=lambda: lag[0], clock=clock)

    assert hold.types_to_hold() == ()
    lag[0] = 2.5
    assert hold.types_to_hold() == ()  # not read again before check_every_s
    clock.now += 0.5
    assert hold.types_to_hold() == (PING,)
    lag[0] = 1.5  # under the threshold, not under half of it: still holding
    clock.now += 0.5
    assert hold.types_to_hold() == (PING,)
    assert hold.release_quota() == 0
    lag[0] = 0.9
    clock.now += 0.5
    assert hold.types_to_hold() == ()


def test_a_relay_s_first_look_holds_at_half_the_threshold() -> None:
    """Started in the middle of a spike, a relay does not let go what the other relays hold."""
    clock, lag = Clock(), [0.6]
    hold = EventHold(holdable=(PING,), hold_lag_s=1.0, check_every_s=0.5, read_lag=lambda: lag[0], clock=clock)

    assert hold.types_to_hold() == (PING,)
    lag[0] = 0.4
    clock.now += 0.5
    assert hold.types_to_hold() == ()
    lag[0] = 0.6  # after the first look, the full threshold again
    clock.now += 0.5
    assert hold.types_to_hold() == ()


@pytest.mark.parametrize(("lag_s", "rate"), [(0.0, 50.0), (1.0, 0.0), (-1.0, 50.0)])
def test_a_switch_that_could_never_let_go_is_refused(lag_s: float, rate: float) -> None:
    with pytest.raises(ImproperlyConfigured, match="must be above 0"):
        EventHold(holdable=(PING,), hold_lag_s=lag_s, release_per_s=rate)


def test_a_rate_below_one_a_second_still_releases() -> None:
    clock = Clock()
    hold = EventHold(holdable=(PING,), release_per_s=0.5, read_lag=lambda: 0.0, clock=clock)

    assert hold.release_quota() == 1
    hold.released(1)
    clock.now += 1.0
    assert hold.release_quota() == 0
    clock.now += 1.0
    assert hold.release_quota() == 1


def test_held_rows_go_out_at_the_release_rate_and_never_in_a_burst() -> None:
    clock = Clock()
    hold = EventHold(holdable=(PING,), release_per_s=10.0, read_lag=lambda: 0.0, clock=clock)

    assert hold.release_quota() == 10
    hold.released(10)
    clock.now += 0.3
    assert hold.release_quota() == 3
    hold.released(3)
    clock.now += 60.0  # a quiet minute allows one second's worth, not sixty
    assert hold.release_quota() == 10
    slow_poll = EventHold(holdable=(PING,), release_per_s=10.0, burst_s=3.0, read_lag=lambda: 0.0, clock=clock)
    assert slow_poll.release_quota() == 30  # a relay sweeping every 3 s still releases 10 a second


def test_the_relay_holds_under_load_and_lets_held_rows_go_oldest_first_within_the_quota() -> None:
    clock, lag = Clock(), [5.0]
    relay = Relay(batch_size=2)
    relay.hold = EventHold(
        holdable=(PING,), hold_lag_s=1.0, release_per_s=3.0, check_every_s=0.5, read_lag=lambda: lag[0], clock=clock
    )
    older = add_pings(1, prefix="older")
    newer = add_pings(4, prefix="newer")
    saga = _start_saga_row("order-2")
    try:
        assert relay.drain_all([ProbeOutbox]) == 1

        assert _queued("events") == []
        assert _queued("saga.eu") == [str(saga.pk)]
        assert outbox_backlog(ProbeOutbox, held=True)[0] == 5
        assert relay.published_total == 1  # a held row is not counted as published, nor twice once released

        lag[0] = 0.2
        clock.now += 0.5
        relay.drain_all([ProbeOutbox])
        first = _queued("events")
        assert len(first) == 3
        assert first[0] == str(older[0].pk)
        clock.now += 1.0
        relay.drain_all([ProbeOutbox])
        assert sorted(_queued("events")) == sorted(str(row.pk) for row in [*older, *newer])
        assert outbox_backlog(ProbeOutbox, held=True)[0] == 0
        assert relay.published_total == 6
    finally:
        relay._drop_producer()


def test_rows_another_relay_held_are_let_go_at_the_next_sweep() -> None:
    """A relay that found nothing held (the rows were another's, locked or not held yet) looks again at every
    sweep: rows held by a relay that then stopped for good are not stranded."""
    holding = Relay()
    holding.hold = EventHold(holdable=(PING,), read_lag=lambda: 5.0)
    other = Relay()
    other.hold = EventHold(holdable=(PING,), read_lag=lambda: 0.0)
    try:
        assert other.release_held() == 0
        assert other._held_somewhere is False
        pings = add_pings(3, prefix="stranded")
        holding.drain_all([ProbeOutbox])
        assert outbox_backlog(ProbeOutbox, held=True)[0] == 3
        holding._drop_producer()  # the holding relay is gone

        assert other.drain_all([ProbeOutbox]) == 0  # a notified drain does not look for held rows
        assert other.drain_all() == 3  # a sweep does

        assert sorted(_queued("events")) == sorted(str(row.pk) for row in pings)
    finally:
        other._drop_producer()


def test_the_lag_is_the_age_of_the_oldest_message_waiting_in_a_critical_queue() -> None:
    assert critical_lag_s() == 0.0
    publish_to(task_name="probe.apply", queue="events", envelope=ping_envelope("not-critical"))
    assert critical_lag_s() == 0.0

    old = {**ping_envelope("old"), "created_at": (timezone.now() - timedelta(seconds=30)).isoformat()}
    publish_to(task_name="orders.start_saga", queue="saga.us", envelope=old)
    publish_to(task_name="orders.start_saga", queue="saga.eu", envelope=ping_envelope("new"))

    assert 30.0 <= critical_lag_s() < 35.0
