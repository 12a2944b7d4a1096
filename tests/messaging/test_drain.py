"""The counts of messages taken off each queue, from which any process reads how fast a queue drains."""

from __future__ import annotations

import threading
import time

import redis

from messaging import drain
from messaging.api import redis_client
from messaging.drain import TakenCounter, message_taken, taken_key
from messaging.queues import queues_wait


def taken(queue: str) -> int:
    return int(redis_client().get(taken_key(queue)) or 0)


def test_counts_are_added_to_redis_together_once_the_interval_is_over() -> None:
    counter = TakenCounter(flush_every_s=60.0)
    for queue in ("saga.eu", "saga.eu", "saga.us", "saga.eu"):
        counter.count(queue)

    assert (taken("saga.eu"), taken("saga.us")) == (0, 0)  # the timer has not run
    counter.flush()
    assert (taken("saga.eu"), taken("saga.us")) == (3, 1)
    counter.flush()  # nothing new: nothing written twice
    assert (taken("saga.eu"), taken("saga.us")) == (3, 1)


def test_the_process_s_own_thread_writes_what_was_counted_within_the_interval() -> None:
    counter = TakenCounter(flush_every_s=0.05)
    counter.count("saga.apac")
    counter.count("saga.apac")

    deadline = time.monotonic() + 5
    while taken("saga.apac") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert taken("saga.apac") == 2
    counter.count("saga.apac")  # the same thread, still running, writes the next interval's
    while taken("saga.apac") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert taken("saga.apac") == 3
    assert [t.name for t in threading.enumerate()].count("drain-counts") >= 1


def test_counts_from_many_threads_add_up_exactly() -> None:
    counter = TakenCounter(flush_every_s=60.0)

    def take_many() -> None:
        for _ in range(1_000):
            counter.count("saga.eu")

    threads = [threading.Thread(target=take_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.flush()

    assert taken("saga.eu") == 8_000


def test_counts_that_cannot_be_written_are_dropped_without_failing_the_consumer(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broker_down() -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    counter = TakenCounter(flush_every_s=60.0)
    counter.count("saga.eu")
    monkeypatch.setattr(drain, "redis_client", broker_down)
    counter.flush()  # does not raise
    monkeypatch.undo()
    counter.count("saga.eu")
    counter.flush()

    assert taken("saga.eu") == 1  # the count of the failed write is gone, the next one is not


def test_a_count_that_fails_never_fails_the_consumer(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    class Broken(TakenCounter):
        def count(self, queue: str) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(drain, "_COUNTER", Broken())

    message_taken({"routing_key": "saga.eu"})  # does not raise

    assert "could not count a message taken off saga.eu" in caplog.text


def test_a_message_is_counted_by_the_queue_it_was_routed_to(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    counter = TakenCounter(flush_every_s=60.0)
    monkeypatch.setattr(drain, "_COUNTER", counter)

    message_taken({"exchange": "", "routing_key": "saga.us", "priority": 0})
    message_taken(None)  # a task called in-process, not delivered: nothing to count
    message_taken({"exchange": ""})
    counter.flush()

    assert (taken("saga.us"), sorted(k.decode() for k in redis_client().keys("queue:taken:*"))) == (
        1,
        ["queue:taken:saga.us"],
    )


def test_a_queue_s_reading_carries_its_taken_count_with_its_length() -> None:
    redis_client().incrby(taken_key("saga.eu"), 40)
    redis_client().incrby(taken_key("compensation"), 2)
    redis_client().lpush("saga.eu", "not a task message")

    wait = queues_wait(["saga.eu", "compensation"])

    assert (wait.depth, wait.taken, wait.oldest_at) == (1, 42, None)


def test_a_broker_that_cannot_be_read_gives_no_count(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broker_down() -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("messaging.queues.redis_client", broker_down)

    assert queues_wait(["saga.eu"]).taken is None  # no reading, rather than a counter at 0
