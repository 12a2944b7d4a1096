"""Keep the garbage collector's full collections short in long-running processes.

A Django process starts with several hundred thousand long-lived objects
(settings, models, URL patterns, Celery's app). CPython's full (generation 2)
collection walks all of them: 40 to 60 ms on this machine, during which every
thread of the process stands still. `make bench-relay` showed each such pause
as a cluster of pickups of 60 to 75 ms, the whole of its p99. Freezing the heap
once start-up is done moves those objects out of the collector's sight, so a
later full collection walks only what the process has made since.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("config.heap")


def freeze_startup_heap() -> None:
    """Collect start-up garbage, then exempt every surviving object from future collections."""
    gc.collect()
    gc.freeze()
    log.debug("froze %d start-up objects out of the garbage collector's reach", gc.get_freeze_count())
