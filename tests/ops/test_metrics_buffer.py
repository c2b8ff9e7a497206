"""prometheus-client's multiprocess values buffered in memory (D424), in this process: a
real multiprocess folder, read with prometheus-client's own collector."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

from hubgate.observability import metrics
from hubgate.observability.multiprocess import MULTIPROC_ENV


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Metrics made in the test write to ``tmp_path`` as one of serve's processes would."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    buffered = metrics._buffered(values.MultiProcessValue(lambda: 4242))  # type: ignore[no-untyped-call]
    monkeypatch.setattr(values, "ValueClass", buffered)
    yield tmp_path
    metrics.flush()
    buffered.close_all_files()


def written(folder: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def metric_pair(name: str) -> tuple[Any, Any]:
    calls = Counter(f"{name}_calls", "Calls.", ["kind"], registry=None)
    seconds = Histogram(f"{name}_seconds", "Seconds.", buckets=(0.1, 1.0), registry=None)
    return calls, seconds


async def test_figures_recorded_in_a_loop_are_written_later_all_of_them(folder: Path) -> None:
    calls, seconds = metric_pair("buffered")
    for _ in range(5):
        calls.labels("a").inc()
        seconds.observe(0.05)
    seconds.observe(0.5)
    # The loop has not run since: nothing was written, and this process still sees them all.
    assert written(folder).get(("buffered_calls_total", (("kind", "a"),)), 0.0) == 0.0
    assert calls.labels("a")._value.get() == 5
    for _ in range(600):  # generous against FLUSH_SECONDS
        if written(folder).get(("buffered_calls_total", (("kind", "a"),))) == 5:
            break
        await asyncio.sleep(0.05)
    figures = written(folder)
    assert figures[("buffered_calls_total", (("kind", "a"),))] == 5
    assert figures[("buffered_seconds_count", ())] == 6
    assert figures[("buffered_seconds_bucket", (("le", "0.1"),))] == 5
    assert figures[("buffered_seconds_bucket", (("le", "1.0"),))] == 6
    assert figures[("buffered_seconds_sum", ())] == pytest.approx(0.75)


async def test_the_last_request_to_end_writes_what_was_recorded(folder: Path) -> None:
    calls, _ = metric_pair("requests")
    metrics.request_started()
    metrics.request_started()
    calls.labels("a").inc()
    metrics.request_ended()
    # Another request is still being answered: the figure waits.
    assert written(folder).get(("requests_calls_total", (("kind", "a"),)), 0.0) == 0.0
    metrics.request_ended()
    assert written(folder)[("requests_calls_total", (("kind", "a"),))] == 1


def test_figures_recorded_outside_an_event_loop_are_written_at_once(folder: Path) -> None:
    calls, seconds = metric_pair("direct")
    calls.labels("b").inc(3)
    seconds.observe(2.0)
    figures = written(folder)
    assert figures[("direct_calls_total", (("kind", "b"),))] == 3
    assert figures[("direct_seconds_bucket", (("le", "+Inf"),))] == 1


async def test_a_scrape_shows_this_process_figures_at_once(folder: Path) -> None:
    calls, _ = metric_pair("scraped")
    calls.labels("c").inc()
    figures = metrics.QueueFigures(jobs=[], events_pending=0, delivery_lag_seconds=0.0)
    text = metrics.exposition(figures).decode()
    assert 'scraped_calls_total{kind="c"} 1.0' in text.splitlines()


async def test_a_figure_recorded_after_a_request_wrote_its_own_is_still_written_in_time(
    folder: Path,
) -> None:
    # The write timed for the first figure stays when the request's end writes it (D533);
    # the next figure, recorded while another request is busy, is written by that timer.
    calls, _ = metric_pair("later")
    metrics.request_started()
    calls.labels("d").inc()
    metrics.request_ended()
    assert written(folder)[("later_calls_total", (("kind", "d"),))] == 1
    metrics.request_started()
    calls.labels("d").inc()
    assert written(folder)[("later_calls_total", (("kind", "d"),))] == 1
    for _ in range(600):  # generous against FLUSH_SECONDS
        if written(folder)[("later_calls_total", (("kind", "d"),))] == 2:
            break
        await asyncio.sleep(0.05)
    assert written(folder)[("later_calls_total", (("kind", "d"),))] == 2
    metrics.request_ended()
