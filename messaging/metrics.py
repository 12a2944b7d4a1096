"""Prometheus metrics of the messaging kernel."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_OUTCOMES = Counter("messaging_consumer_outcomes_total", "Consumer results by outcome", ["consumer", "outcome"])
RELAY_PUBLISHED = Counter("messaging_relay_published_total", "Outbox rows published", ["module"])
RELAY_BATCH_SIZE = Histogram(
    "messaging_relay_batch_size", "Rows per relay batch", ["module"], buckets=(1, 5, 10, 50, 100, 250, 500, 1000)
)
RELAY_BATCH_SECONDS = Histogram("messaging_relay_batch_seconds", "Time to publish and mark one batch", ["module"])
OUTBOX_BACKLOG = Gauge("messaging_outbox_backlog", "Unpublished outbox rows", ["module"])
OUTBOX_OLDEST_AGE = Gauge("messaging_outbox_oldest_age_seconds", "Age of the oldest unpublished row", ["module"])
DEAD_LETTERS_OPEN = Gauge("messaging_dead_letters_open", "Open dead letters", ["module"])
