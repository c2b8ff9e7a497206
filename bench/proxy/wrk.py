"""bench/proxy's load and accounting: one wrk run against a target, with the CPU and memory of
the server's processes read around it (PostgreSQL's apart). Shared by run.py, servers.py and
probes.py."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.failures import Failures


@dataclass
class Target:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    # A wrk Lua script giving each request the next instance's Element token; ``headers`` then
    # only serve the check that the target answers before it is measured.
    script: Path | None = None
    # The server's master process, whose tree's CPU time is read around every run.
    pid: int | None = None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


# wrk's own default is 2 s: an answer slower than that is counted as a socket timeout and left
# out of the latency figures. Set here, long enough that a slow answer shows in p99 (where it
# belongs) and short enough that a stalled one still fails the run (D422).
WRK_TIMEOUT_S = 10


def run_wrk(
    target: Target, connections: int, duration: int, others: list[int] | None = None
) -> dict[str, Any]:
    """One wrk run; ``others`` are the pids of the servers not measured, whose CPU time over
    the run is reported (they should be idle)."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s",
               f"--timeout={WRK_TIMEOUT_S}s", "--latency"]  # fmt: skip
    if target.script is not None:  # the script writes every request's headers itself
        command += ["-s", str(target.script)]
    else:
        for name, value in target.headers.items():
            command += ["-H", f"{name}: {value}"]
    url = target.url
    cpu = ServerCpu(target.pid)
    idle = [ServerCpu(pid) for pid in others or ()]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    cpu_s = cpu.seconds()
    others_s = [sum(c.seconds() or (0.0, 0.0)) for c in idle]
    latency = dict(re.findall(r"^\s+(50|99)(?:\.\d+)?%\s+(\S+)\s*$", out, re.M))
    # Thread stats: "Latency  <avg>  <stdev>  <max>  <+/- stdev>"; the slowest answer shows
    # whether any came near the timeout.
    slowest = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    if "50" not in latency or "99" not in latency:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    socket = dict(re.findall(r"(connect|read|write|timeout) (\d+)", out))
    errors = sum(int(n) for n in socket.values())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": requests,
        # CPU time of the server's processes (PostgreSQL's apart) per answer: unlike req/s,
        # hardly moved by what else runs on the machine (bench/README.md, "CPU per request").
        **(
            {
                "cpu_us_per_req": round(1e6 * cpu_s[0] / max(requests, 1), 1),
                "pg_cpu_us_per_req": round(1e6 * cpu_s[1] / max(requests, 1), 1),
            }
            if cpu_s is not None
            else {}
        ),
        **({"others_cpu_s": round(sum(others_s), 3)} if others else {}),
        "socket_errors": {k: int(v) for k, v in socket.items()},
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        **({"max_ms": _ms(slowest.group(1))} if slowest else {}),
        "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def _tree(pid: int) -> list[tuple[str, Path]]:
    """A process and its descendants: (command name, /proc folder) of each."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        proc = Path(f"/proc/{current}")
        try:
            name = (proc / "comm").read_text().strip()
            children = (proc / "task" / str(current) / "children").read_text().split()
        except OSError:
            continue
        found.append((name, proc))
        stack.extend(int(c) for c in children)
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of a process tree: (its own processes, PostgreSQL's)."""
    own = postgres = 0.0
    for name, proc in _tree(pid):
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
        if name.startswith("postgres"):
            postgres += seconds
        else:
            own += seconds
    return own, postgres


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its descendants, PostgreSQL's own processes left out."""
    total = 0
    for name, proc in _tree(pid):
        if name.startswith("postgres"):
            continue
        try:
            rss = re.search(r"VmRSS:\s+(\d+)", (proc / "status").read_text())
        except OSError:
            continue
        total += int(rss.group(1)) if rss else 0
    return total


class ServerCpu:
    """The CPU a server's processes spend from now until ``seconds()``; None without a pid."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = tree_cpu_seconds(pid) if pid is not None else None

    def seconds(self) -> tuple[float, float] | None:
        if self.pid is None or self.start is None:
            return None
        end = tree_cpu_seconds(self.pid)
        return end[0] - self.start[0], end[1] - self.start[1]


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def note_run(failures: Failures, key: str, run: dict[str, Any]) -> None:
    for kind, count in run["socket_errors"].items():
        failures.note(key, f"socket {kind}", count)
    failures.note(key, "non-2xx answer", run["non_2xx"])
