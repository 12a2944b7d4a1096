"""A worker says at start-up when PostgreSQL lacks the sessions its threads will hold."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from celery.signals import worker_ready
from django.db import connections

import config.celery  # noqa: F401 - connects the worker's signal handlers
from config.db_sessions import SESSIONS_PER_THREAD, sessions_short

T = TypeVar("T")


class _Consumer:
    """What Celery sends worker_ready from: the consumer, whose controller knows the pool's size."""

    def __init__(self, concurrency: int) -> None:
        self.controller = type("Controller", (), {"concurrency": concurrency})()


def _in_a_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread of its own, with its own sessions, as a worker's start-up check runs (it closes
    its session, which would end the test's transaction on this thread)."""
    result: list[T] = []
    runner = threading.Thread(target=lambda: result.append(fn()))
    runner.start()
    runner.join(10)
    return result[0]


def _limit_and_in_use() -> tuple[int, int]:
    with connections["orders"].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int, count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend'"
        )
        return cursor.fetchone()


def _join_checkers() -> None:
    for thread in threading.enumerate():
        if thread.name == "session-count":
            thread.join(10)


@pytest.mark.django_db(databases=["orders"])
def test_threads_the_server_has_sessions_for_pass_without_a_word() -> None:
    limit, in_use = _limit_and_in_use()
    fitting = (limit - in_use - 1) // SESSIONS_PER_THREAD

    assert fitting >= 1, "this server has no room for one more saga thread"
    assert _in_a_thread(lambda: sessions_short(threads=fitting)) is None


@pytest.mark.django_db(databases=["orders"])
def test_more_threads_than_sessions_left_are_named_with_the_figures() -> None:
    limit, _ = _limit_and_in_use()

    reason = _in_a_thread(lambda: sessions_short(threads=limit))

    assert reason is not None
    assert f"{limit} threads will open about {limit * SESSIONS_PER_THREAD - 1} more" in reason
    assert f"max_connections {limit}" in reason


@pytest.mark.django_db(databases=["orders"])
def test_the_check_gives_its_own_session_back() -> None:
    def check_then_look() -> object:
        sessions_short(threads=1)
        return connections["orders"].connection

    assert _in_a_thread(check_then_look) is None


@pytest.mark.django_db(databases=["orders"])
def test_a_worker_ready_with_too_many_threads_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    limit, _ = _limit_and_in_use()

    with caplog.at_level(logging.WARNING, logger="config.db_sessions"):
        worker_ready.send(sender=_Consumer(limit))
        _join_checkers()

    assert any("sessions" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.django_db(databases=["orders"])
def test_a_worker_ready_with_room_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="config.db_sessions"):
        worker_ready.send(sender=_Consumer(1))
        worker_ready.send(sender=None)
        _join_checkers()

    assert [r for r in caplog.records if r.name == "config.db_sessions"] == []
