"""A sandbox worker process: D42's second fence (D390).

Started by ``pool.SandboxPool`` as ``python -m hubgate.kit.sandbox.worker``; reads jobs from
stdin and writes their outcomes to stdout (``wire``), one job at a time, each in a fresh
QuickJS context (``ScriptSession.call_rows``: the calls' JSON goes into the context and the
outcomes' JSON out of it unparsed, D442), until stdin closes. Around each job the process
lowers its own OS limits: ``RLIMIT_AS`` to its size between jobs plus the job's
``fenceBytes``, ``RLIMIT_CPU`` to the CPU time it has used plus the job's ``fenceSeconds``.
The engine's limits stop a script first; these stop whatever escapes them (a native routine
that never reaches an interrupt check, an allocation outside the engine's accounting): the
kernel kills the process on SIGXCPU, or an allocation fails, and the pool replaces the
process.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from typing import BinaryIO, Final

import orjson

from hubgate.kit.sandbox import Limits, ScriptSession, bundled_sources
from hubgate.kit.sandbox.wire import HEADER, OUT_OF_MEMORY_EXIT, encode, frame

_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


def _address_space(statm: int) -> int:
    """The process's size in bytes, from ``/proc/self/statm`` kept open: read again from its
    start, the kernel writes it afresh, and a job saves opening it (D491)."""
    return int(os.pread(statm, 64, 0).split()[0]) * _PAGE


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _part(stream: BinaryIO) -> bytes | None:
    header = stream.read(HEADER)
    if len(header) < HEADER:
        return None
    return stream.read(int.from_bytes(header, "big"))


def _read(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    head = _part(stream)
    bulk = None if head is None else _part(stream)
    return None if head is None or bulk is None else (head, bulk)


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    # A process killed by SIGXCPU would otherwise leave a core file behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Loaded before the fence is measured, so that what a job may use is the job's own.
    bundled_sources()
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    try:
        while (found := _read(source)) is not None:
            head, rows = found
            job = orjson.loads(head)
            limits = Limits(seconds=job["seconds"], memory_bytes=job["memoryBytes"])
            allowed_bytes = _address_space(statm) + job["fenceBytes"]
            resource.setrlimit(resource.RLIMIT_AS, (allowed_bytes, as_hard))
            allowed = math.ceil(_cpu_used() + job["fenceSeconds"])
            resource.setrlimit(resource.RLIMIT_CPU, (allowed, cpu_hard))
            with ScriptSession(job["body"], job["params"], limits) as session:
                text, stopped = session.call_rows(rows.decode())
            answer = frame({"stopped": encode(stopped)}, b"null" if text is None else text.encode())
            resource.setrlimit(resource.RLIMIT_AS, (as_hard, as_hard))
            sink.write(answer)
            sink.flush()

    finally:
        os.close(statm)


def main() -> None:
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except MemoryError:
        os._exit(OUT_OF_MEMORY_EXIT)


if __name__ == "__main__":
    main()
