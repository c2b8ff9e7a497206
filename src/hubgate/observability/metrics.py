"""Prometheus metrics (D62), aggregated across serve's API processes and its worker.

``hubgate serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder of the data dir before
anything imports this module: every process it starts then writes its samples there, and
``/metrics`` reads them all. A process on its own (the tests' in-process server) keeps them in
memory. Labels are bounded by the code and the catalog: a route template, a status, an element
key, a manifest resource path; never an id, a token or anything a tenant wrote.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from hubgate.observability import context, traces
from hubgate.observability.multiprocess import MULTIPROC_ENV
from hubgate.settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _ProcessId:
    """This process's id, read again only after a fork. prometheus-client's multiprocess
    values ask for it on every increment to notice a fork, and ``os.getpid`` is a system call:
    six of them per hub call were 6 % of its CPU under bench/proxy (bench/README.md)."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()

    @classmethod
    def get(cls) -> int:
        return cls.value


os.register_at_fork(after_in_child=_ProcessId.refresh)

# How long a figure recorded in one of serve's processes may wait before a scrape answered by
# another process sees it (D424). The process answering a scrape writes its own first.
FLUSH_SECONDS = 0.25


class _Unwritten:
    """The values recorded since their last write to this process's multiprocess file, and
    the event loop that will write them (``FLUSH_SECONDS`` after the first of them)."""

    values: list[Any] = []
    loop: asyncio.AbstractEventLoop | None = None
    # Requests being answered by this process (``RequestObserver``): the last one to end
    # writes what they recorded, so that a process with nothing to answer is never behind.
    active = 0


def flush() -> None:
    """Write what this process recorded to its multiprocess file (a no-op in memory)."""
    pending, _Unwritten.values = _Unwritten.values, []
    for value in pending:
        value.write()


def _timed_flush() -> None:
    _Unwritten.loop = None
    flush()


def _schedule_flush() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop in this thread to write later: write now
        flush()
        return
    # A write already timed on this loop takes these values too, sooner than a new one would:
    # a flush at the end of a request leaves it in place, so that sequential calls (each
    # written as it ends) do not time a write each (D533).
    if _Unwritten.loop is not loop:
        _Unwritten.loop = loop
        loop.call_later(FLUSH_SECONDS, _timed_flush)


def _forget_unwritten() -> None:
    # A forked child starts with files of its own; what the parent recorded is the parent's.
    for value in _Unwritten.values:
        value.forget()
    _Unwritten.values = []
    _Unwritten.loop = None


def _buffered(mmaped: type[Any]) -> type[Any]:
    """prometheus-client's multiprocess value, with ``inc`` adding in memory: each ``inc`` of
    the original takes a lock and writes the file's mmap, six of them per hub call (D424)."""

    class BufferedValue(mmaped):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._unwritten = 0.0
            self._clean = True

        def inc(self, amount: float) -> None:
            self._unwritten += amount
            if self._clean:
                self._clean = False
                _Unwritten.values.append(self)
                _schedule_flush()

        def set(self, value: float, timestamp: float | None = None) -> None:
            self._unwritten = 0.0
            super().set(value, timestamp)

        def get(self) -> float:
            written: float = super().get()
            return written + self._unwritten

        def write(self) -> None:
            amount, self._unwritten, self._clean = self._unwritten, 0.0, True
            if amount:
                super().inc(amount)

        def forget(self) -> None:
            self._unwritten, self._clean = 0.0, True

    return BufferedValue


if os.environ.get(MULTIPROC_ENV):
    # Before any metric below makes a value; prometheus-client's own class, buffered.
    values.ValueClass = _buffered(values.MultiProcessValue(_ProcessId.get))  # type: ignore[no-untyped-call]
    os.register_at_fork(after_in_child=_forget_unwritten)
    # What each process recorded last: serve's API processes (spawned, so they exit through
    # the interpreter) and its worker alike.
    atexit.register(flush)

# Hub calls are answered in milliseconds when cached and in seconds when a vendor is slow.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "hubgate_http_requests",
    "HTTP requests answered, by route template, method, status and element.",
    ["route", "method", "status", "element"],
)
HUB_CALL_SECONDS = Histogram(
    "hubgate_hub_call_seconds",
    "Hub calls from request to answer, by element and manifest resource.",
    ["element", "resource"],
    buckets=LATENCY_BUCKETS,
)
VENDOR_CALL_SECONDS = Histogram(
    "hubgate_vendor_call_seconds",
    "Single calls to a vendor (each retry is one), by element and manifest resource.",
    ["element", "resource"],
    buckets=LATENCY_BUCKETS,
)
VENDOR_ERRORS = Counter(
    "hubgate_vendor_errors",
    "Vendor calls that failed: kind is timeout, unreachable, 4xx or 5xx.",
    ["element", "resource", "kind"],
)
VENDOR_RETRIES = Counter(
    "hubgate_vendor_retries", "Vendor calls repeated (D25).", ["element", "resource"]
)
TOKEN_CACHE = Counter(
    "hubgate_token_cache_lookups", "Element token lookups: result is hit or miss.", ["result"]
)
EVENT_POLLS = Counter("hubgate_event_polls", "Polls run: outcome is ok or failed.", ["outcome"])
EVENTS_CREATED = Counter("hubgate_events_created", "Events recorded by pollers.")
EVENT_DELIVERIES = Counter(
    "hubgate_event_deliveries",
    "Delivery attempts: outcome is delivered, or failed (retried or given up).",
    ["outcome"],
)


class _Switch:
    on = True


_switch = _Switch()
# Labelled children by their label values: ``labels()`` checks and converts its arguments and
# takes a lock on every call, a cost the hot path paid several times a request. The label sets
# are bounded (see above), and so are these.
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Counter | Histogram, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def count_request(route: str, method: str, status: int, element: str) -> None:
    _child(HTTP_REQUESTS, route, method, str(status), element).inc()


def time_hub_call(element: str, resource: str, seconds: float) -> None:
    _child(HUB_CALL_SECONDS, element, resource).observe(seconds)


def request_started() -> None:
    _Unwritten.active += 1


def request_ended() -> None:
    """After the request's own figures: the last request in flight writes them all."""
    _Unwritten.active -= 1
    if not _Unwritten.active and _Unwritten.values:
        flush()


def configure(settings: Settings) -> None:
    """Whether this process records figures (``HUBGATE_METRICS_ENABLED``, D300)."""
    _switch.on = settings.metrics_enabled


def enabled() -> bool:
    return _switch.on


class VendorTimer:
    """One vendor attempt: its latency, how it failed if it did, and its span (D63)."""

    def __init__(self, method: str) -> None:
        self.labels = context.current()
        self.started = time.perf_counter()
        self.span = traces.start(
            "vendor call",
            {
                "hubgate.element": self.labels.element,
                "hubgate.resource": self.labels.resource,
                "http.request.method": method,
            },
            SpanKind.CLIENT,
        )

    def done(self, status: int | None = None, failure: str | None = None) -> None:
        element, resource = self.labels.element, self.labels.resource
        kind = failure or (f"{status // 100}xx" if status is not None and status >= 400 else None)
        if _switch.on:
            seconds = time.perf_counter() - self.started
            _child(VENDOR_CALL_SECONDS, element, resource).observe(seconds)
            if kind is not None:
                _child(VENDOR_ERRORS, element, resource, kind).inc()
        if self.span is not None:
            if status is not None:
                self.span.set_attribute("http.response.status_code", status)
            if kind is not None:
                self.span.set_status(StatusCode.ERROR, kind)
            self.span.end()


def vendor_retry() -> None:
    if _switch.on:
        labels = context.current()
        _child(VENDOR_RETRIES, labels.element, labels.resource).inc()


def token_cache(hit: bool) -> None:
    if _switch.on:
        _child(TOKEN_CACHE, "hit" if hit else "miss").inc()


# --- the scrape -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFigures:
    """Read from the database at scrape time: the same on every node, true across nodes."""

    jobs: Sequence[tuple[str, str, int]]  # task, status, count
    events_pending: int
    delivery_lag_seconds: float


class _Queues(Collector):
    def __init__(self, figures: QueueFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "hubgate_jobs",
            "Jobs queued (todo) or running (doing), by task.",
            labels=["task", "status"],
        )
        for task, status, count in self.figures.jobs:
            jobs.add_metric([task, status], count)
        yield jobs
        yield GaugeMetricFamily(
            "hubgate_events_pending", "Events not yet delivered.", value=self.figures.events_pending
        )
        yield GaugeMetricFamily(
            "hubgate_event_delivery_lag_seconds",
            "How long the oldest due delivery has waited past its attempt time.",
            value=self.figures.delivery_lag_seconds,
        )


def exposition(figures: QueueFigures) -> bytes:
    """The text format of every process's samples plus the queue figures."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        flush()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in _own_collectors():
            registry.register(collector)
    registry.register(_Queues(figures))
    return generate_latest(registry)


def _own_collectors() -> list[Collector]:
    return [
        HTTP_REQUESTS,
        HUB_CALL_SECONDS,
        VENDOR_CALL_SECONDS,
        VENDOR_ERRORS,
        VENDOR_RETRIES,
        TOKEN_CACHE,
        EVENT_POLLS,
        EVENTS_CREATED,
        EVENT_DELIVERIES,
    ]
