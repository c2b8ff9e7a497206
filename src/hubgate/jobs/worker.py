"""Running a job worker: ``hubgate worker``, and the one ``hubgate serve`` starts (D3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from procrastinate import job_context, utils
from procrastinate import worker as procrastinate_worker
from procrastinate.jobs import Job

from hubgate.jobs.repository import take_jobs
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


class BatchWorker(procrastinate_worker.Worker):
    """procrastinate's worker, whose fetch loop starts as many jobs a turn as it has free
    slots, taken in one statement (D520).

    procrastinate's loop starts one job a turn (a slot awaited, one fetch, the job's task
    made), and each await of the turn waits behind the running jobs' callbacks on the one
    event loop: about 10 ms a turn, so a worker of 32 ran 5 to 6 jobs at once (D513). The
    stop, aborts, heartbeat and the rest are procrastinate's: the jobs started here are
    registered where its shutdown and abort handling look for them.
    """

    async def _fetch_and_process_jobs(self) -> None:
        """Take and start jobs until the queues have none left to give, or a stop."""
        while not self._stop_event.is_set():
            first = asyncio.create_task(self._job_semaphore.acquire())
            await utils.wait_any(first, self._stop_event.wait())
            holding = 1 if first.done() and not first.cancelled() else 0
            if self._stop_event.is_set():
                self._release(holding)
                return
            # Every other free slot too: an unlocked semaphore's acquire returns at once.
            while not self._job_semaphore.locked():
                await self._job_semaphore.acquire()
                holding += 1
            # Cleared before the take: a job inserted while it runs wakes the next turn.
            self._new_job_event.clear()
            assert self.worker_id is not None
            try:
                taken = await take_jobs(
                    self.app.connector,
                    queues=self.queues,
                    worker_id=self.worker_id,
                    limit=holding,
                )
            except BaseException:
                self._release(holding)
                raise
            self._release(holding - len(taken))
            # Taken jobs are `doing` under this worker's id: they start even when a stop came
            # meanwhile, and the shutdown waits for them or aborts them as for any other.
            for job in taken:
                self._start(job)
            if len(taken) < holding:
                return

    def _release(self, slots: int) -> None:
        for _ in range(slots):
            self._job_semaphore.release()

    def _start(self, job: Job) -> None:
        job_id = job.id

        def abort_reason() -> job_context.AbortReason | None:
            return self._job_ids_to_abort.get(job_id) if job_id else None

        context = job_context.JobContext(
            app=self.app,
            worker_name=self.worker_name,
            worker_queues=self.queues,
            additional_context=dict(self.additional_context or {}),
            job=job,
            abort_reason=abort_reason,
            start_timestamp=time.time(),
        )
        running = asyncio.create_task(
            self._process_job(context), name=f"process job {job.task_name}[{job_id}]"
        )
        self._running_jobs[running] = context
        running.add_done_callback(self._ended)

    def _ended(self, running: asyncio.Task[None]) -> None:
        del self._running_jobs[running]
        self._job_semaphore.release()


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
