"""``/metrics``: what every process counted, plus the kernel's state read at scrape time.

With ``PROMETHEUS_MULTIPROC_DIR`` set, counters and histograms come from the
files all processes (web workers, Celery workers, relays) write there;
otherwise from this process's default registry. Outbox backlog, oldest
unpublished age and open dead letters are queried from the database on each
scrape, so they are right whether or not a relay is running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from messaging.models import DeadLetter, DeadLetterStatus
from messaging.redis import redis_client
from messaging.relay import outbox_backlog, outbox_models

log = logging.getLogger("messaging.metrics")


def backlog_by_module(*, held: bool = False) -> dict[str, tuple[int, float]]:
    """(rows due to be published, oldest age in seconds) per module, or (``held``) of the rows held back under
    load; a module whose database fails is left out."""
    result: dict[str, tuple[int, float]] = {}
    for model in outbox_models():
        module = model.objects.db
        try:
            count, age = outbox_backlog(model, held=held)
        except DatabaseError as exc:
            log.warning("metrics: cannot read the outbox of %s (%s)", module, exc)
            continue
        before_count, before_age = result.get(module, (0, 0.0))
        result[module] = (before_count + count, max(before_age, age))
    return result


def open_dead_letters_by_module() -> dict[str, int]:
    """Open dead letters per module, with a zero for every module that has an outbox."""
    counts = dict.fromkeys((m.objects.db for m in outbox_models()), 0)
    rows = (
        DeadLetter.objects.filter(status=DeadLetterStatus.OPEN)
        .values_list("module")
        .annotate(open=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


class KernelStateCollector(Collector):
    """Gauges of the messaging kernel's state, computed from the database."""

    def collect(self) -> Iterator[Metric]:
        yield from self._outbox()
        yield from self._dead_letters()

    def _outbox(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "messaging_outbox_backlog", "Outbox rows due to be published (held rows apart)", labels=["module"]
        )
        oldest = GaugeMetricFamily(
            "messaging_outbox_oldest_age_seconds", "Age of the oldest row due to be published", labels=["module"]
        )
        for module, (count, age) in sorted(backlog_by_module().items()):
            backlog.add_metric([module], count)
            oldest.add_metric([module], age)
        yield backlog
        yield oldest
        held = GaugeMetricFamily(
            "messaging_outbox_held", "Outbox rows held back while the critical queues are behind", labels=["module"]
        )
        held_oldest = GaugeMetricFamily(
            "messaging_outbox_held_oldest_age_seconds", "Age of the oldest row held back", labels=["module"]
        )
        for module, (count, age) in sorted(backlog_by_module(held=True).items()):
            held.add_metric([module], count)
            held_oldest.add_metric([module], age)
        yield held
        yield held_oldest

    def _dead_letters(self) -> Iterator[Metric]:
        try:
            counts = open_dead_letters_by_module()
        except DatabaseError as exc:
            log.warning("metrics: cannot read dead letters (%s)", exc)
            return
        gauge = GaugeMetricFamily("messaging_dead_letters_open", "Open dead letters", labels=["module"])
        for module, count in sorted(counts.items()):
            gauge.add_metric([module], count)
        yield gauge


class QueueDepthCollector(Collector):
    """Messages waiting in each broker queue (Redis list lengths)."""

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("messaging_queue_depth", "Messages waiting in a broker queue", labels=["queue"])
        try:
            client = redis_client()
            names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(name)
                depths = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: cannot read queue depths (%s)", exc)
            return
        for name, depth in zip(names, depths, strict=True):
            gauge.add_metric([name], depth)
        yield gauge


_SCRAPE_COLLECTORS: list[Collector] = [KernelStateCollector(), QueueDepthCollector()]


def register_scrape_collector(collector: Collector) -> None:
    """Add a collector that reads its figures at scrape time (e.g. orders by state)."""
    _SCRAPE_COLLECTORS.append(collector)


class ProcessDefaultCollector(Collector):
    """This process's default registry (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(ProcessDefaultCollector())
    for collector in _SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


def metrics(request: HttpRequest) -> HttpResponse:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)
