"""bench/proxy in one process: the CPU a hub call costs Hubgate, without the HTTP server.

The app of ``hubgate serve`` (``create_app``, its lifespan, an embedded PostgreSQL, one Twilio
instance on bench/proxy's nginx stand-in) is called as an ASGI app, ``--concurrency`` calls at
a time, and the process's CPU time (user + system) is divided by the number of calls. Beside
it, the same number of calls through (e)'s raw pass-through (``rawasgi.app``) in the same
process: the difference is what Hubgate's own work costs per call, in microseconds of CPU, a
figure that the load of other processes on the machine hardly moves (wall-clock rates do).

    .venv/bin/python bench/proxy/pipeline.py [--calls 2000] [--concurrency 25] [--rounds 15]
    .venv/bin/python bench/proxy/pipeline.py --cprofile   # Hubgate's CPU time, by function
    .venv/bin/python bench/proxy/pipeline.py --setting HUBGATE_METRICS_ENABLED=false

Loopback only; needs nginx (bench/proxy/run.py installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.proxy.run import (  # noqa: E402
    HUB_LIMITS,
    NGINX,
    PAGE_PATH,
    SID,
    ensure_tools,
    free_port,
    stop_on_sigterm,
    wait_http,
    write_standin,
)

Call = Callable[[], Awaitable[int]]


class Answer:
    """What an ASGI app sent for one request: status and body."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def asgi_call(
    app: Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> Answer:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a disconnect never comes: the call ends first
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    answer = Answer()
    await app(scope, receive, answer.send)
    return answer


async def measure(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """CPU microseconds per call and calls per second, ``concurrency`` callers at a time."""
    remaining = calls

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await call()
            if status != 200:
                raise RuntimeError(f"a measured call answered {status}")

    # The process's CPU clock (user + system, all threads): to the nanosecond, unlike os.times.
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return 1e6 * cpu / calls, calls / wall


async def main_async(args: argparse.Namespace, tmp: Path, standin: str) -> dict[str, Any]:
    os.environ.update(
        HUBGATE_DATA_DIR=str(tmp / "hub"),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
        HUBGATE_LOG_LEVEL="warning",
        HUBGATE_EMBEDDED_WORKER="false",
        BENCH_UPSTREAM=standin,
        **HUB_LIMITS,
    )
    os.environ.update(pair.split("=", 1) for pair in args.setting)
    from hubgate.observability.multiprocess import prepare_multiprocess_dir
    from hubgate.settings import Settings

    settings = Settings()
    if settings.metrics_enabled:  # before prometheus-client is imported, as serve does
        prepare_multiprocess_dir(settings.data_dir)
    from bench.proxy import rawasgi
    from hubgate.app import create_app
    from hubgate.bootstrap import bootstrap_if_empty, prepare_database

    url = await asyncio.to_thread(prepare_database, settings)
    created = await bootstrap_if_empty(settings, url)
    assert created is not None
    app = create_app(settings, database_url=url)
    user = f"User {created.user_secret}, Organization {created.organization_secret}".encode()
    instance = {
        "element": {"key": "twiliov2"},
        "name": "bench",
        "configuration": {
            "username": SID,
            "password": "bench-token",
            "base.url": f"{standin}/2010-04-01/Accounts",
        },
    }
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        made = await asgi_call(
            app,
            "POST",
            "/elements/api-v2/instances",
            b"",
            [(b"authorization", user), (b"content-type", b"application/json")],
            json.dumps(instance).encode(),
        )
        if made.status != 200:
            raise RuntimeError(f"provisioning answered {made.status}: {made.body[:300]!r}")
        element = [(b"authorization", f"Element {json.loads(made.body)['token']}".encode())]

        async def hub() -> int:
            path = "/elements/api-v2/hubs/messaging/messages"
            return (await asgi_call(app, "GET", path, b"", element, b"")).status

        async def raw() -> int:
            query = b"PageSize=100&Page=0"
            return (await asgi_call(rawasgi.app, "GET", PAGE_PATH, query, [], b"")).status

        targets: dict[str, Call] = {"raw": raw, "hubgate": hub}
        for call in targets.values():  # warm-up: connections, caches
            await measure(call, 200, args.concurrency)
        if args.cprofile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await measure(hub, args.calls, args.concurrency)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(45)
            stats.sort_stats("cumulative").print_stats(70)
            return {}
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, call in targets.items():
                rounds[name].append(await measure(call, args.calls, args.concurrency))
        for name, measured in rounds.items():
            results[name] = {
                "cpu_us_per_call": round(statistics.median(m[0] for m in measured), 1),
                "calls_per_s": round(statistics.median(m[1] for m in measured)),
                "rounds_cpu_us": [round(m[0], 1) for m in measured],
            }
        own = [h[0] - r[0] for h, r in zip(rounds["hubgate"], rounds["raw"], strict=True)]
        results["hubgate_own_cpu_us_per_call"] = round(statistics.median(own), 1)
    return results


def main() -> int:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per target and round")
    parser.add_argument("--concurrency", type=int, default=25, help="calls in flight")
    parser.add_argument("--rounds", type=int, default=15, help="rounds, the targets alternating")
    parser.add_argument("--messages", type=int, default=10, help="messages on the canned page")
    parser.add_argument("--cprofile", action="store_true", help="profile Hubgate's calls")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="HUBGATE_NAME=value",
        help="a setting of the app (repeatable), after the benchmark's",
    )
    args = parser.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    tmp.chmod(0o755)
    port = free_port()
    write_standin(tmp / "root", args.messages)
    conf = NGINX.format(tmp=tmp, root=tmp / "root", workers=1, standin=port, proxy=free_port())
    (tmp / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    standin = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    try:
        wait_http(standin + PAGE_PATH)
        import uvloop

        results = uvloop.run(main_async(args, tmp, standin))
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        from hubgate.db.embedded import stop_embedded

        stop_embedded(tmp / "hub")
        shutil.rmtree(tmp, ignore_errors=True)
    if results:
        results["load_average"] = {"before": load_before, "after": os.getloadavg()}
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
