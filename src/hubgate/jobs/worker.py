"""Running a job worker: ``hubgate worker``, and the one ``hubgate serve`` starts (D3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hubgate.observability import traces
from hubgate.settings import Settings

if TYPE_CHECKING:
    # serve's supervisor imports this module for WorkerProcess and spawn_worker only; the
    # runtime (the whole app's imports) is the worker process's own.
    from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.worker")


def job_pool_size(settings: Settings) -> int:
    # The listener holds one connection; fetching, finishing and deferring share the rest.
    # Task code uses the SQLAlchemy pool, so this stays small.
    return min(20, 4 + settings.worker_concurrency // 4)


async def work(
    runtime: Runtime,
    *,
    name: str | None = None,
    install_signal_handlers: bool = True,
    fetch_interval: float = 1.0,
) -> None:
    """Run a worker on ``runtime`` until it is stopped (a signal, or cancellation)."""
    settings = runtime.settings
    await runtime.jobs.app.run_worker_async(
        name=name or f"worker-{os.getpid()}",
        concurrency=settings.worker_concurrency,
        # Finished jobs are history nobody reads; events and attempts are the record.
        delete_jobs="successful",
        additional_context={"runtime": runtime},
        install_signal_handlers=install_signal_handlers,
        update_heartbeat_interval=settings.worker_heartbeat_seconds,
        # The first SIGTERM lets running jobs finish this long, then aborts them (D66); the
        # work of an aborted job is not lost: the tick defers its poll or delivery again.
        shutdown_graceful_timeout=settings.shutdown_grace,
        stalled_worker_timeout=settings.worker_stalled_seconds,
        # LISTEN/NOTIFY wakes the worker for new jobs; this polling catches retries whose
        # scheduled time arrives (no notification marks that moment).
        fetch_job_polling_interval=fetch_interval,
        abort_job_polling_interval=max(fetch_interval, 5.0),
    )


async def _watch_parent(parent_pid: int, worker: asyncio.Task[None]) -> None:
    # A worker started by `hubgate serve` must not outlive it, even when serve is killed
    # and cannot say so: once the parent is gone the worker is re-parented.
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent_pid:
            break
    log.warning("parent process %s is gone; stopping the worker", parent_pid)
    worker.cancel()


async def run_worker(
    settings: Settings,
    database_url: str,
    *,
    name: str | None = None,
    parent_pid: int | None = None,
) -> None:
    from hubgate.runtime import open_runtime

    traces.configure(settings)
    runtime = await open_runtime(settings, database_url, job_pool_size=job_pool_size(settings))
    try:
        worker = asyncio.create_task(
            work(runtime, name=name, fetch_interval=settings.worker_fetch_seconds)
        )
        watcher = asyncio.create_task(_watch_parent(parent_pid, worker)) if parent_pid else None
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        finally:
            if watcher is not None:
                watcher.cancel()
    finally:
        await runtime.close()
        traces.shutdown()


def spawn_worker(
    database_url: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The embedded worker of ``hubgate serve``: a child process on the same database.

    It runs in its own session so that only serve signals it: a Ctrl-C on the terminal
    reaches the whole foreground group, and a second signal would stop the worker at once.
    """
    child_env = dict(os.environ if env is None else env)
    child_env["HUBGATE_DATABASE_URL"] = database_url
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "hubgate", "worker", "--parent-pid", str(os.getpid())],
        env=child_env,
        start_new_session=True,
    )


class WorkerProcess:
    """Serve's handle on its embedded worker: one polite stop, then, if need be, a kill."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._asked = False

    def request_stop(self) -> None:
        # Once only: procrastinate takes a second signal as "stop at once".
        if not self._asked and self.process.poll() is None:
            self._asked = True
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self, timeout: float) -> None:
        self.request_stop()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the worker did not stop within %.0f s; killing it", timeout)
            self.kill()


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
