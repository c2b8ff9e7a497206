"""A pool of long-lived sandbox worker processes: D42's second fence (D390).

One pool per Hubgate process (made on first use, so each server worker process gets its own
after the fork). A request's whole script work is one job: one round trip to an idle worker
(``wire`` frames over its stdin and stdout), where it runs in a fresh QuickJS context under
the engine's limits and the OS limits of ``worker``. A worker that dies, is killed by an OS
limit or does not answer in time is killed and replaced; the job's calls answer a
``FailureKind.PROCESS`` failure, so a transformation still returns its mapped objects with
``Elements-Error`` (D37).

The pool serves any event loop: waiting for a worker and its answer uses futures of the
caller's running loop, file descriptors are watched only for the length of one job, and the
only shared state is guarded by a thread lock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from hubgate.kit.sandbox.outcomes import (
    MIB,
    FailureKind,
    Limits,
    Outcome,
    ScriptFailure,
    batch_outcomes,
)
from hubgate.kit.sandbox.wire import OUT_OF_MEMORY_EXIT, decode, frame, rows_json, unframe

# What a job may use beyond the engine's own limits before the OS stops it: the input and
# output JSON, Python's copies of them, the engine's allocations outside its accounting.
_FENCE_EXTRA_BYTES: Final = 128 * MIB
# The answer is awaited this long past the CPU fence before the worker counts as stuck: a
# loaded machine gives the worker less than one second of CPU per second.
_WALL_FACTOR: Final = 4.0
_WALL_EXTRA_SECONDS: Final = 10.0
_READ_CHUNK: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Fence:
    """The OS limits of one job: CPU seconds, and bytes of address space above the idle size."""

    cpu_seconds: float
    memory_bytes: int

    @classmethod
    def around(cls, limits: Limits) -> Fence:
        """Wide enough that the engine's limits always act first on what they can see."""
        return cls(
            cpu_seconds=2 * limits.seconds + 1,
            memory_bytes=2 * limits.memory_bytes + _FENCE_EXTRA_BYTES,
        )


class _WorkerLostError(Exception):
    """The worker gave no answer; ``reason`` says why, for ``Elements-Error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hubgate.kit.sandbox.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.writes = self.process.stdin.fileno()
        self.reads = self.process.stdout.fileno()
        os.set_blocking(self.writes, False)
        os.set_blocking(self.reads, False)

    async def exchange(self, request: bytes, wait_seconds: float) -> tuple[bytes, bytes]:
        """Send one frame and read one back (its head and bulk), without blocking the loop."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()
        pending = memoryview(request)
        received = bytearray()

        def fail(reason: str) -> None:
            if not answered.done():
                answered.set_exception(_WorkerLostError(reason))

        def writable() -> None:
            nonlocal pending
            try:
                sent = os.write(self.writes, pending)
            except BlockingIOError:
                return
            except OSError:
                loop.remove_writer(self.writes)
                fail(self._ended())
                return
            pending = pending[sent:]
            if not pending:
                loop.remove_writer(self.writes)

        def readable() -> None:
            try:
                chunk = os.read(self.reads, _READ_CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                fail(self._ended())
                return
            received.extend(chunk)
            parts = unframe(received)
            if parts is not None and not answered.done():
                answered.set_result(parts)

        # A job usually fits the pipe's buffer: written at once, with no writer to watch (and
        # none to remove: removing one never added costs a failed lookup).
        writable()
        watching = bool(pending)
        if watching:
            loop.add_writer(self.writes, writable)
        loop.add_reader(self.reads, readable)
        try:
            async with asyncio.timeout(wait_seconds):
                return await answered
        except TimeoutError:
            raise _WorkerLostError(
                f"the sandbox process gave no answer within {wait_seconds:g} s"
            ) from None
        finally:
            if watching:
                loop.remove_writer(self.writes)
            loop.remove_reader(self.reads)

    def _ended(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the sandbox process stopped answering"
        if code == -signal.SIGXCPU:
            return "the sandbox process was stopped by its CPU time limit"
        if code == -signal.SIGKILL:
            return "the sandbox process was killed"
        if code == OUT_OF_MEMORY_EXIT:
            return "the sandbox process ran out of memory"
        return f"the sandbox process ended (exit status {code})"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class SandboxPool:
    """At most ``size`` worker processes, started as jobs need them and kept for the next."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a sandbox pool needs at least one process")
        self._size = size
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._live = 0
        # Callers waiting for a worker: each gets one, or None meaning "start your own".
        self._waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Worker | None]]] = (
            deque()
        )

    async def run_many(
        self,
        body: str,
        params: Sequence[str],
        calls: Sequence[Mapping[str, Any]],
        limits: Limits,
        fence: Fence | None = None,
    ) -> list[Outcome]:
        """``sandbox.run_many`` in a worker process, under ``fence`` (default: around limits)."""
        if not calls:
            return []
        fence = fence or Fence.around(limits)
        request = frame(
            {
                "body": body,
                "params": list(params),
                "seconds": limits.seconds,
                "memoryBytes": limits.memory_bytes,
                "fenceSeconds": fence.cpu_seconds,
                "fenceBytes": fence.memory_bytes,
            },
            rows_json(params, calls),
        )
        worker = await self._acquire()
        try:
            answer = await worker.exchange(
                request, _WALL_FACTOR * fence.cpu_seconds + _WALL_EXTRA_SECONDS
            )
        except _WorkerLostError as lost:
            self._replace(worker)
            return [ScriptFailure(FailureKind.PROCESS, lost.reason)] * len(calls)
        except BaseException:
            # Cancelled mid-job: the worker's answer would be read by the next job.
            self._replace(worker)
            raise
        self._release(worker)
        head, outcomes = answer
        stopped = decode(orjson.loads(head)["stopped"])
        return batch_outcomes(orjson.loads(outcomes), stopped, len(calls))

    async def _acquire(self) -> _Worker:
        waiting: asyncio.Future[_Worker | None] | None = None
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                # Died while idle (killed from outside): its slot is taken by a new one.
                worker.kill()
                self._live -= 1
            if self._live < self._size:
                self._live += 1
            else:
                loop = asyncio.get_running_loop()
                waiting = loop.create_future()
                self._waiting.append((loop, waiting))
        handed: _Worker | None = None
        if waiting is not None:
            try:
                handed = await waiting
            except asyncio.CancelledError:
                if waiting.done() and not waiting.cancelled():
                    self._give_back(waiting.result())
                raise
        if handed is not None:
            return handed
        try:
            return _Worker()
        except BaseException:
            self._give_back(None)
            raise

    def _release(self, worker: _Worker) -> None:
        self._give_back(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._give_back(None)

    def _give_back(self, worker: _Worker | None) -> None:
        """Hand a worker (or, for None, a free slot) to the first live waiter, else keep it."""
        with self._lock:
            while self._waiting:
                loop, future = self._waiting.popleft()
                if future.done() or loop.is_closed():
                    continue
                loop.call_soon_threadsafe(self._settle, future, worker)
                return
            if worker is None:
                self._live -= 1
            else:
                self._idle.append(worker)

    def _settle(self, future: asyncio.Future[_Worker | None], worker: _Worker | None) -> None:
        if future.done():
            # Cancelled between the hand-over and now: pass it on.
            self._give_back(worker)
        else:
            future.set_result(worker)

    def close(self) -> None:
        """Stop every idle worker (busy ones end when their pipes close with this process)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.kill()
