"""bench/proxy's two looks inside a served Hubgate instead of the matrix: where its workers
spend their time (``--profile``, py-spy) and how many system calls an answer costs them
(``--syscalls``, strace)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.failures import Failures
from bench.proxy.wrk import Target, note_run, run_wrk

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent


def profile(hub_pid: int, target: Target, duration: int) -> None:
    """Where Hubgate's workers spend their time: py-spy's samples, summed per function."""
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy") or str(BIN / "py-spy")
    children = Path(f"/proc/{hub_pid}/task/{hub_pid}/children").read_text().split()
    workers = [int(c) for c in children if "python" in Path(f"/proc/{c}/cmdline").read_text()]
    outs = [Path(tempfile.mkstemp(suffix=".txt")[1]) for _ in workers]
    spies = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--format",
                "raw",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                str(duration),
                "-p",
                str(pid),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, out in zip(workers, outs, strict=True)
    ]
    time.sleep(1)
    print(run_wrk(target, 50, duration - 2))
    for spy_process in spies:
        spy_process.wait()
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for out in outs:
        for line in out.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            count = int(count_text)
            frames = stack.split(";")
            total += count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
            own[frames[-1]] = own.get(frames[-1], 0) + count
        out.unlink()
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"--- top {title} (% of {total} samples)")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:80]:
            print(f"{100 * count / total:6.1f}%  {frame[:150]}")


def syscall_line(name: str, per_answer: dict[str, float]) -> str:
    others = ", ".join(f"{k} {v}" for k, v in per_answer.items() if k not in ("read", "write"))
    return (
        f"{name:<15} total {sum(per_answer.values()):.2f}  write {per_answer.get('write', 0):.2f}"
        f"  read {per_answer.get('read', 0):.2f}  other: {others}"
    )


def count_syscalls(hubs: dict[str, Target], duration: int) -> None:
    """System calls per answer of each Hubgate's workers under 50 connections (``strace -c``,
    one Hubgate at a time), printed and saved as bench/results/proxy-syscalls-<UTC time>.json.

    strace slows what it traces, so the rates of these runs are no figures; the counts are."""
    if not shutil.which("strace"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "strace"], check=True, env=env)
    failures = Failures()
    counted: dict[str, dict[str, Any]] = {}
    for name, target in hubs.items():
        assert target.pid is not None
        children = Path(f"/proc/{target.pid}/task/{target.pid}/children").read_text().split()
        # The API workers; the embedded PostgreSQL's processes are not Hubgate's.
        children = [c for c in children if "python" in Path(f"/proc/{c}/cmdline").read_text()]
        outs = [Path(tempfile.mkstemp(suffix=".txt")[1]) for _ in children]
        tracers = [
            subprocess.Popen(
                ["strace", "-c", "-f", "-p", pid, "-o", str(out)], stderr=subprocess.DEVNULL
            )
            for pid, out in zip(children, outs, strict=True)
        ]
        time.sleep(1)  # attached before the load starts
        run = run_wrk(target, 50, duration)
        note_run(failures, f"{name} @50", run)
        for tracer in tracers:
            tracer.send_signal(signal.SIGINT)  # strace detaches and writes its summary
            tracer.wait(timeout=30)
        calls: dict[str, int] = {}
        for out in outs:
            # "% time  seconds  usecs/call  calls  [errors]  syscall", one line per call kind
            for line in out.read_text().splitlines():
                fields = line.split()
                kind = fields[-1] if fields else ""
                if (
                    len(fields) >= 5
                    and fields[3].isdigit()
                    and kind.isidentifier()
                    and kind != "total"
                ):
                    calls[kind] = calls.get(kind, 0) + int(fields[3])
            out.unlink()
        answers = run["requests"]
        counted[name] = {
            "answers": answers,
            "per_answer": {k: round(v / answers, 2) for k, v in sorted(calls.items())},
        }
    for name, figures in counted.items():
        failures.report(f"{name} @50", functools.partial(syscall_line, name, figures["per_answer"]))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_file = RESULTS / f"proxy-syscalls-{stamp}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file.write_text(
        json.dumps(
            {
                "when": stamp,
                "syscalls": {n: failures.figures(f"{n} @50", f) for n, f in counted.items()},
                "failures": failures.as_json(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {out_file.relative_to(ROOT)}")
    if failures.exit_code():
        raise SystemExit(failures.exit_code())
