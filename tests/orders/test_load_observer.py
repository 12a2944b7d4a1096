"""When the load generator first looks at an accepted order."""

from __future__ import annotations

import pytest

from orders.loadgen.observer import PollPolicy

POLICY = PollPolicy(first_poll=0.5, settled_share=0.9, min_samples=20)


def test_without_enough_history_an_order_is_first_looked_at_first_poll_after_it_was_sent() -> None:
    assert POLICY.first_due(sent=100.0, accepted=100.01, recent_settle_s=[3.0] * 19) == 100.5


def test_an_order_is_not_looked_at_before_most_recent_orders_had_come_to_rest() -> None:
    recent = [0.1 * i for i in range(1, 101)]  # 0.1 … 10 s after acceptance

    assert POLICY.expected_settle_s(recent) == pytest.approx(9.0, abs=0.02)  # nine in ten of them had by then
    assert POLICY.first_due(sent=100.0, accepted=100.2, recent_settle_s=recent) == pytest.approx(109.2, abs=0.02)


def test_an_order_accepted_after_retries_waits_from_its_acceptance_not_from_its_first_send() -> None:
    recent = [2.0] * 50

    # Sent at 100, refused, accepted on a retry at 112: due two seconds after that, not at once.
    assert POLICY.first_due(sent=100.0, accepted=112.0, recent_settle_s=recent) == 114.0


def test_a_quick_platform_keeps_the_first_poll_floor() -> None:
    assert POLICY.first_due(sent=100.0, accepted=100.01, recent_settle_s=[0.04] * 200) == 100.5


def test_every_share_of_settled_orders_can_be_asked_for() -> None:
    recent = [0.1 * i for i in range(1, 101)]

    assert PollPolicy(settled_share=1.0).expected_settle_s(recent) == pytest.approx(9.9, abs=0.02)  # 99th
    assert PollPolicy(settled_share=0.0).expected_settle_s(recent) == pytest.approx(0.2, abs=0.02)  # 1st percentile
