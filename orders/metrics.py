"""Prometheus metrics of orders and their saga."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

SAGA_STEP_SECONDS = Histogram(
    "saga_step_seconds",
    "Duration of one saga step (participant call and its record on the order)",
    ["step"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REQUESTS_SHED = Counter("api_requests_shed_total", "Requests refused with 503 by admission control", ["route"])
SAGA_OUTCOMES = Counter("saga_outcomes_total", "Sagas ending, by final state and reason", ["outcome", "reason"])

log = logging.getLogger("orders.metrics")


class OrdersByStateCollector(Collector):
    """Orders by state and region, counted at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from orders.models import Order, OrderState, Region

        try:
            rows = Order.objects.values_list("state", "region").annotate(n=Count("pk")).order_by()
            counts = {(state, region): n for state, region, n in rows}
        except DatabaseError as exc:
            log.warning("metrics: cannot count orders (%s)", exc)
            return
        gauge = GaugeMetricFamily("orders_by_state", "Orders by state and region", labels=["state", "region"])
        for state in OrderState.values:
            for region in Region.values:
                gauge.add_metric([state, region], counts.get((state, region), 0))
        yield gauge
