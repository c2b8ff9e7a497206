"""OpenTelemetry traces over OTLP/HTTP (D63), off unless HUBGATE_OTEL_ENDPOINT is set.

Spans: the API request (named by its route template), the hub pipeline's execution, each
vendor call, and each job. Attributes are the element key, the manifest resource, methods and
statuses: never a URL (it holds account ids), a header, a credential or a body.
When tracing is off every helper here is a no-op costing one attribute read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import Span, SpanKind, Tracer

from hubgate.observability import context
from hubgate.settings import Settings


class _State:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_state = _State()


def configure(settings: Settings) -> None:
    """Start exporting this process's spans, once; a no-op without an endpoint."""
    if not settings.otel_endpoint or _state.provider is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": "hubgate"}),
        sampler=ParentBasedTraceIdRatio(settings.otel_sample_ratio),
    )
    endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _state.provider = provider
    _state.tracer = provider.get_tracer("hubgate")


def shutdown() -> None:
    """Send what is buffered; called when the process stops."""
    if _state.provider is not None:
        _state.provider.shutdown()
        _state.provider = None
        _state.tracer = None


def enabled() -> bool:
    return _state.tracer is not None


Attributes = Mapping[str, str | int]


def start(name: str, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL) -> Span | None:
    """A span that is not made current (the caller ends it), or None when tracing is off."""
    tracer = _state.tracer
    if tracer is None:
        return None
    return tracer.start_span(name, kind=kind, attributes=attributes)


@contextmanager
def span(
    name: str, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A current span around a block (its children nest in it); nothing when tracing is off.

    The first span of a request or job also puts its trace id in the log context.
    """
    tracer = _state.tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        now = context.current()
        if not now.trace_id:
            now.trace_id = format(current.get_span_context().trace_id, "032x")
        yield current
