"""OpenTelemetry tracing across processes, joined through message headers.

Off by default (``OTEL_TRACES=off``): then every helper here is a no-op that
costs a settings lookup. ``console`` prints spans; ``otlp`` exports them to
the collector named by the standard OTEL_EXPORTER_OTLP_* variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from opentelemetry import propagate, trace

_state = {"configured": False}


def tracing_enabled() -> bool:
    return settings.OTEL_TRACES != "off"


def configure_tracing() -> None:
    if _state["configured"] or not tracing_enabled():
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
    if settings.OTEL_TRACES == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["configured"] = True


@contextmanager
def span(name: str, *, parent: Mapping[str, Any] | None = None, **attributes: Any) -> Iterator[None]:
    """A span named ``name``; ``parent`` is a carrier (message or HTTP headers)."""
    if not tracing_enabled():
        yield
        return
    context = propagate.extract(dict(parent)) if parent else None
    clean = {k: v for k, v in attributes.items() if v is not None}
    with trace.get_tracer("order-platform").start_as_current_span(name, context=context, attributes=clean):
        yield


def trace_headers() -> dict[str, str]:
    """The current trace context, to travel in a message's headers."""
    if not tracing_enabled():
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
