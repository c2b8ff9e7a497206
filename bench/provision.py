"""Provisioning throughput: Twilio instances created per second, credential check included.

Starts `hubgate serve` (embedded PostgreSQL in a temporary data dir) and the Twilio simulator
as separate processes on loopback, creates a bounded number of instances at a few
concurrency levels, prints one table and saves JSON under bench/results/.

    .venv/bin/python bench/provision.py [--count 300] [--concurrency 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
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

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(count))

    async def worker() -> None:
        nonlocal errors
        for _ in queue:
            started = time.perf_counter()
            async with http.post(url, json=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": count,
        "errors": errors,
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
    data: Path, env: dict[str, str], port: int, sim_port: int, count: int, levels: list[int]
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
        await run_level(http, url, headers, body, 20, 5)  # warm-up
        return [await run_level(http, url, headers, body, count, level) for level in levels]


def main(count: int, levels: list[int]) -> None:
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
    )
    processes = start_processes(data, env, sim_port)
    try:
        rows = asyncio.run(measure(data, env, port, sim_port, count, levels))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"{'clients':>8} {'created':>8} {'errors':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['concurrency']:>8} {row['requests']:>8} {row['errors']:>7} "
            f"{row['per_second']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "provision.json"
    result = {
        "benchmark": "provision",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", default="1,10,50")
    arguments = parser.parse_args()
    main(arguments.count, [int(c) for c in arguments.concurrency.split(",")])
