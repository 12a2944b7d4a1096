"""The Celery application; configuration comes from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings
from django.db import connections

from config.db_sessions import warn_in_background_if_sessions_short
from config.heap import freeze_startup_heap

app = Celery("order_platform")
# A snapshot of the CELERY_* settings, not the live Django settings object:
# Celery looks its configuration up several times per message sent or run, and
# each lookup through Django's lazy settings cost more than the Redis round trip
# (a third of the relay's CPU per message in `make bench-relay`).
app.config_from_object(
    {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}, namespace="CELERY"
)
# Celery's Django fix-up closes every database connection before and after
# each task unless told to reuse them: with seven aliases that is seven new
# PostgreSQL sessions per saga, the largest CPU cost per order measured by
# `make bench`. Reuse them: one the server hung up on is replaced before the next task (below), one broken
# during a task is closed by the consumer wrapper.
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()


@worker_ready.connect
@worker_process_init.connect
def _settle_heap(**_: object) -> None:
    """Start-up is done (threads and solo pools run tasks in this process; prefork children get the second
    signal): keep the start-up heap out of later garbage collections (config/heap.py)."""
    freeze_startup_heap()


@worker_ready.connect
def _count_sessions(sender: object = None, **_: object) -> None:
    """Say at start-up when PostgreSQL lacks the sessions this worker's threads will hold (config/db_sessions.py)."""
    threads = getattr(getattr(sender, "controller", None), "concurrency", None)
    if isinstance(threads, int) and threads > 0:
        warn_in_background_if_sessions_short(threads=threads)


@task_prerun.connect
def _look_at_connections(**_: object) -> None:
    """Replace, before the task's first query, a connection of this thread that the server hung up on
    since the last task (a restart, a failover): no round trip unless it did (config/db/base.py)."""
    for connection in connections.all(initialized_only=True):
        look = getattr(connection, "look_again_if_server_spoke", None)
        if look is not None:
            look()
