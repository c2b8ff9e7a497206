"""Stopping `hubgate serve` (issue 9 item 5, D66): SIGTERM stops the worker and the embedded
PostgreSQL; a kill -9 leaves nothing that keeps the next start and stop from working."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import postmasters_under
from tests.ops.processes import (
    alive,
    children,
    fresh_env,
    hubgate,
    postmaster_pid,
    start,
    wait_serving,
    wait_until,
)

pytestmark = pytest.mark.slow


def hubs_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['HUBGATE_PORT']}/elements/api-v2/hubs"


def worker_of(serve_pid: int) -> int:
    workers = [p.pid for p in children(serve_pid) if "worker" in p.cmdline()]
    assert len(workers) == 1, [p.cmdline() for p in children(serve_pid)]
    return workers[0]


def test_sigterm_stops_the_worker_and_the_embedded_database(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    serve = start(hubgate("serve"), env, tmp_path / "serve.log")
    try:
        wait_serving(serve, hubs_url(env))
        postgres = postmaster_pid(tmp_path / "var" / "pg")
        worker = worker_of(serve.pid)
        assert alive(postgres)

        serve.popen.send_signal(signal.SIGTERM)
        assert serve.wait() == 0, serve.output()
        assert not alive(worker)
        wait_until(lambda: not alive(postgres), "PostgreSQL did not stop")
        assert postmasters_under(tmp_path) == []
    finally:
        serve.stop()


def test_after_a_kill_9_the_next_start_and_stop_still_work(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    pgdata = tmp_path / "var" / "pg"
    first = start(hubgate("serve"), env, tmp_path / "serve-1.log")
    try:
        wait_serving(first, hubs_url(env))
        worker = worker_of(first.pid)
        first.popen.kill()
        first.wait()
        # Nobody could stop the database: it runs on, with the dead serve still counted.
        postgres = postmaster_pid(pgdata)
        assert alive(postgres)
        assert first.pid in json.loads((pgdata / ".handle_pids.json").read_text())
        # The worker notices its parent is gone and stops by itself.
        wait_until(lambda: not alive(worker), "the orphaned worker did not stop")
    finally:
        first.stop()

    second = start(hubgate("serve"), env, tmp_path / "serve-2.log")
    try:
        wait_serving(second, hubs_url(env))
        assert postmaster_pid(pgdata) == postgres  # joined, not started twice
        second.popen.send_signal(signal.SIGTERM)
        assert second.wait() == 0, second.output()
        wait_until(lambda: not alive(postgres), "PostgreSQL did not stop after the restart")
    finally:
        second.stop()
