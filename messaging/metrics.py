"""Prometheus metrics of the messaging kernel, counted where the work happens.

Under ``PROMETHEUS_MULTIPROC_DIR`` every process (web workers, Celery workers,
the relay) writes its samples to that directory and the web's ``/metrics``
adds them up. The kernel's state (outbox backlog and age, open dead letters)
is read from the database at scrape time by ``messaging.metrics_view``.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CONSUMER_OUTCOMES = Counter("messaging_consumer_outcomes_total", "Consumer results by outcome", ["consumer", "outcome"])
RELAY_PUBLISHED = Counter("messaging_relay_published_total", "Outbox rows published", ["module"])
RELAY_HELD = Counter(
    "messaging_relay_held_total", "Outbox rows held back under load (non-critical consumers only)", ["module"]
)
RELAY_BATCH_SIZE = Histogram(
    "messaging_relay_batch_size", "Rows per relay batch", ["module"], buckets=(1, 5, 10, 50, 100, 250, 500, 1000)
)
RELAY_BATCH_SECONDS = Histogram("messaging_relay_batch_seconds", "Time to publish and mark one batch", ["module"])
