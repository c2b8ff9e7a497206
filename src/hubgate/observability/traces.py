"""OpenTelemetry traces over OTLP/HTTP (D63), off unless HUBGATE_OTEL_ENDPOINT is set.

Spans: the API request (named by its route template), the hub pipeline's execution, each
vendor call, each database statement, and each job. Attributes are the element key, the
manifest resource, methods and statuses, and a statement's SQL with its placeholders: never a
URL (it holds account ids), a header, a credential, a body or a bound parameter's value.
A request that carries a W3C ``traceparent`` continues the caller's trace.
When tracing is off every helper here is a no-op costing one attribute read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

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


_W3C = TraceContextTextMapPropagator()
_PROPAGATED = (b"traceparent", b"tracestate")


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    """The caller's span named by a W3C ``traceparent`` header, as the parent of a request's
    span; None when there is none or it is malformed (the request then starts a trace)."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in _PROPAGATED
    }
    if "traceparent" not in carrier:
        return None
    parent = _W3C.extract(carrier)
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


# What ``span`` gives when tracing is off: one context manager, entered again and again. The
# generator a ``contextmanager`` function makes on every call cost a hub call 2-4 µs (D534).
_NO_SPAN: AbstractContextManager[None] = nullcontext()


def span(
    name: str,
    attributes: Attributes,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
) -> AbstractContextManager[Span | None]:
    """A current span around a block (its children nest in it); nothing when tracing is off.

    Without ``parent`` it is a child of the current span. The first span of a request or job
    also puts its trace id in the log context.
    """
    tracer = _state.tracer
    if tracer is None:
        return _NO_SPAN
    return _current_span(tracer, name, attributes, kind, parent)


@contextmanager
def _current_span(
    tracer: Tracer,
    name: str,
    attributes: Attributes,
    kind: SpanKind,
    parent: Context | None,
) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes
    ) as current:
        now = context.current()
        if not now.trace_id:
            now.trace_id = format(current.get_span_context().trace_id, "032x")
        yield current


# --- database statements ------------------------------------------------------------------

# The span of the statement running on a connection (one at a time), kept in its info.
_STATEMENT_SPAN = "hubgate.statement_span"
# Long enough for any statement Hubgate writes; an expanded IN list is cut, not sent whole.
STATEMENT_TEXT_LIMIT = 2000


def trace_statements(engine: AsyncEngine) -> None:
    """A span per statement ``engine`` runs inside a request or job, when tracing is on.

    The text is the statement as compiled, with its placeholders: the values (tokens, names,
    vendor credentials in their encrypted form) travel apart as parameters and are never read.
    Statements outside any span (start-up, migrations) are not traced: a trace of one
    statement tells nobody anything.
    """
    if _state.tracer is None:
        return
    target = engine.sync_engine
    event.listen(target, "before_cursor_execute", _statement_started)
    event.listen(target, "after_cursor_execute", _statement_finished)
    event.listen(target, "handle_error", _statement_failed)


def _statement_started(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    tracer = _state.tracer
    if tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    started = tracer.start_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.query.text": statement[:STATEMENT_TEXT_LIMIT],
        },
    )
    # A statement cancelled mid-way (its task was) had neither an end nor an error event.
    stale: Span | None = conn.info.get(_STATEMENT_SPAN)
    if stale is not None:
        stale.end()
    conn.info[_STATEMENT_SPAN] = started


def _statement_finished(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    finished: Span | None = conn.info.pop(_STATEMENT_SPAN, None)
    if finished is not None:
        finished.end()


def _statement_failed(failure: ExceptionContext) -> None:
    conn = failure.connection
    failed: Span | None = conn.info.pop(_STATEMENT_SPAN, None) if conn is not None else None
    if failed is not None:
        # The class says what went wrong; the message may quote a value, so it is not kept.
        failed.set_status(StatusCode.ERROR, type(failure.original_exception).__name__)
        failed.end()
