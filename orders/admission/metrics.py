"""The admission gate's lag as a metric, for the on-call engineer paged for 503s."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from orders.admission.gate import last_saga_lag_s

log = logging.getLogger("orders.admission")


class AdmissionLagCollector(Collector):
    """Each region's saga lag as the scraped web process last read it (orders/admission/), orders on their way
    from every process included while the region's queue is busy; not this process's own orders not announced
    yet, nor a reading older than ``gate.SHOWN_FOR_S`` (a process that served no orders lately). A scrape takes no
    reading of its own: it must not wait on Redis, nor hold up the orders waiting for the gate's lock."""

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "admission_saga_lag_seconds",
            "Seconds a new order would wait for its saga, as the scraped web process's admission gate last read it",
            labels=["region"],
        )
        try:
            lags = last_saga_lag_s()
        except Exception:  # a metric is not worth a failed scrape
            log.exception("metrics: cannot report the admission gate's lag")
            return
        for region, lag in sorted(lags.items()):
            gauge.add_metric([region], lag)
        yield gauge
