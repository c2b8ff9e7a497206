"""bench/proxy: a hub list call through four proxies in front of a near-free vendor stand-in.

(a) wrk straight to nginx serving a canned Twilio messages page; (b) nginx as a reverse proxy;
(c) a bare FastAPI + aiohttp pass-through (passthrough.py); (d) Hubgate (`hubgate serve`),
(c) and (d) with the same number of worker processes. Loopback only, bounded in time.

    .venv/bin/python bench/proxy/run.py [--duration 8] [--workers 2] [--connections 1,50,200]

Prints a table and writes bench/results/proxy-<UTC time>.json. Needs nginx and wrk from
Debian's packages (installed with apt-get when missing, as root).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
SID = "AC" + "0123456789abcdef" * 2
PAGE_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


def ensure_tools() -> None:
    if (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) and shutil.which("wrk"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx", "wrk"], check=True, env=env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def canned_page(count: int) -> dict[str, Any]:
    """A Twilio messages page as Twilio writes it: snake_case, RFC 2822 dates, nulls."""
    messages = []
    for i in range(count):
        sid = f"SM{i:032x}"
        messages.append(
            {
                "account_sid": SID,
                "api_version": "2010-04-01",
                "body": f"Hello number {i}, this is a benchmark message.",
                "date_created": "Thu, 05 Mar 2026 07:08:09 +0000",
                "date_sent": "Thu, 05 Mar 2026 07:08:10 +0000",
                "date_updated": "Thu, 05 Mar 2026 07:08:12 +0000",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": "+15017122661",
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": "1",
                "price": "-0.00750",
                "price_unit": "USD",
                "sid": sid,
                "status": "delivered",
                "subresource_uris": {"media": f"{PAGE_PATH[:-5]}/{sid}/Media.json"},
                "to": "+15558675310",
                "uri": f"{PAGE_PATH[:-5]}/{sid}.json",
            }
        )
    return {
        "first_page_uri": f"{PAGE_PATH}?PageSize={count}&Page=0",
        "end": count - 1,
        "previous_page_uri": None,
        "messages": messages,
        "uri": f"{PAGE_PATH}?PageSize={count}&Page=0",
        "page_size": count,
        "start": 0,
        "next_page_uri": None,
        "page": 0,
    }


def write_standin(root: Path, count: int) -> None:
    page = root / PAGE_PATH.lstrip("/")
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps(canned_page(count)))
    account = {"sid": SID, "status": "active", "friendly_name": "bench", "type": "Full"}
    (page.parent.parent / f"{SID}.json").write_text(json.dumps(account))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # nginx workers run as nobody


NGINX = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    upstream standin {{ server 127.0.0.1:{standin}; keepalive 256; }}
    server {{ listen 127.0.0.1:{standin}; root {root}; location / {{ try_files $uri =404; }} }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://standin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def post_json(url: str, body: Any, headers: dict[str, str]) -> Any:
    data = json.dumps(body).encode()
    # Only loopback http:// URLs this script builds itself are opened.
    request = urllib.request.Request(  # noqa: S310
        url, data=data, headers={**headers, "Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, connections: int, duration: int, headers: dict[str, str]) -> dict[str, Any]:
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)(?:\.\d+)?%\s+(\S+)\s*$", out, re.M))
    if "50" not in latency or "99" not in latency:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    socket = dict(re.findall(r"(connect|read|write|timeout) (\d+)", out))
    errors = sum(int(n) for n in socket.values())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "socket_errors": {k: int(v) for k, v in socket.items()},
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its descendants, PostgreSQL's own processes left out."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        proc = Path(f"/proc/{current}")
        try:
            name = (proc / "comm").read_text().strip()
            status = (proc / "status").read_text()
            children = (proc / "task" / str(current) / "children").read_text().split()
        except OSError:
            continue
        if name.startswith("postgres"):
            continue
        rss = re.search(r"VmRSS:\s+(\d+)", status)
        total += int(rss.group(1)) if rss else 0
        stack.extend(int(c) for c in children)
    return total


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--connections", default="1,50,200")
    parser.add_argument("--messages", type=int, default=10, help="messages on the canned page")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the matrix, record Hubgate's workers with py-spy under 50 connections",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    tmp.chmod(0o755)
    ports = {name: free_port() for name in ("standin", "proxy", "pass", "hub")}
    write_standin(tmp / "root", args.messages)
    (tmp / "nginx.conf").write_text(
        NGINX.format(tmp=tmp, root=tmp / "root", workers=args.workers, **ports)
    )
    log = (tmp / "servers.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=log, stderr=log, cwd=ROOT
        )
        processes.append(process)
        return process

    try:
        spawn([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf")])
        standin = f"http://127.0.0.1:{ports['standin']}"
        spawn(
            [str(BIN / "uvicorn"), "bench.proxy.passthrough:app", "--port", str(ports["pass"]),
             "--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools",
             "--no-access-log", "--log-level", "warning"],
            {"BENCH_UPSTREAM": standin},
        )  # fmt: skip
        data_dir = tmp / "hubgate"
        hub = spawn(
            [str(BIN / "hubgate"), "serve", "--port", str(ports["hub"]),
             "--workers", str(args.workers)],
            {"HUBGATE_DATA_DIR": str(data_dir), "HUBGATE_EGRESS_ALLOW": "127.0.0.0/8",
             "HUBGATE_LOG_LEVEL": "warning", "HUBGATE_EMBEDDED_WORKER": "false"},
        )  # fmt: skip
        api = f"http://127.0.0.1:{ports['hub']}/elements/api-v2"
        wait_http(standin + PAGE_PATH)
        wait_http(f"http://127.0.0.1:{ports['pass']}{PAGE_PATH}")
        wait_http(f"{api}/hubs", timeout=120)
        secrets = json.loads((data_dir / "bootstrap.json").read_text())
        user = f"User {secrets['user']['secret']}, Organization {secrets['organization']['secret']}"
        instance = post_json(
            f"{api}/instances",
            {
                "element": {"key": "twiliov2"},
                "name": "bench",
                "configuration": {
                    "username": SID,
                    "password": "bench-token",
                    "base.url": f"{standin}/2010-04-01/Accounts",
                },
            },
            {"Authorization": user},
        )
        element = {"Authorization": f"Element {instance['token']}"}
        page = f"{PAGE_PATH}?PageSize=100&Page=0"
        targets: dict[str, tuple[str, dict[str, str]]] = {
            "a_direct": (standin + page, {}),
            "b_nginx": (f"http://127.0.0.1:{ports['proxy']}{page}", {}),
            "c_passthrough": (f"http://127.0.0.1:{ports['pass']}{page}", {}),
            "d_hubgate": (f"{api}/hubs/messaging/messages", element),
        }  # fmt: skip
        wait_http(targets["d_hubgate"][0], headers=element)
        for url, headers in targets.values():
            run_wrk(url, 8, 2, headers)  # warm-up: connections, caches, JIT-free but still
        if args.profile:
            profile(hub.pid, targets["d_hubgate"], args.duration)
            return
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in targets}
        peak = 0
        # Rounds interleave the targets so that a burst of load from elsewhere on the machine
        # hits all of them alike; medians over the rounds are what the table shows.
        for _ in range(args.repeat):
            for connections in levels:
                for name, (url, headers) in targets.items():
                    with PeakRss(hub.pid) as rss:
                        run = run_wrk(url, connections, args.duration, headers)
                    if name == "d_hubgate":
                        peak = max(peak, rss.peak)
                    runs[name].setdefault(str(connections), []).append(run)
        results = {name: {k: summarize(v) for k, v in by.items()} for name, by in runs.items()}
    finally:
        for process in reversed(processes):
            process.terminate()  # uvicorn and nginx masters stop their workers on SIGTERM
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    report(results, levels, peak, args)
    shutil.rmtree(tmp, ignore_errors=True)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "runs": runs,
    }


def profile(hub_pid: int, target: tuple[str, dict[str, str]], duration: int) -> None:
    """Where Hubgate's workers spend their time: py-spy's samples, summed per function."""
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY", "py-spy")
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
    print(run_wrk(target[0], 50, duration - 2, target[1]))
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


def report(
    results: dict[str, dict[str, Any]], levels: list[int], peak_kib: int, args: argparse.Namespace
) -> None:
    rows = []
    for connections in levels:
        key = str(connections)
        direct = results["a_direct"][key]
        for name, by_level in results.items():
            run = by_level[key]
            run["added_p50_ms"] = round(run["p50_ms"] - direct["p50_ms"], 3)
            run["added_p99_ms"] = round(run["p99_ms"] - direct["p99_ms"], 3)
            rows.append((connections, name, run))
    rps = {name: {key: run["rps"] for key, run in by.items()} for name, by in results.items()}
    ratios = {
        key: {
            "d_over_c": round(rps["d_hubgate"][key] / rps["c_passthrough"][key], 3),
            "d_over_b": round(rps["d_hubgate"][key] / rps["b_nginx"][key], 3),
        }
        for key in map(str, levels)
    }
    print(f"{'conns':>5} {'target':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'+p50 ms':>8} {'+p99 ms':>8} {'errors':>6}")  # fmt: skip
    for connections, name, run in rows:
        print(f"{connections:>5} {name:<14} {run['rps']:>9.0f} {run['p50_ms']:>8.3f} "
              f"{run['p99_ms']:>8.3f} {run['added_p50_ms']:>8.3f} {run['added_p99_ms']:>8.3f} "
              f"{run['errors']:>6}")  # fmt: skip
    for key, ratio in ratios.items():
        d_c, d_b = ratio["d_over_c"], ratio["d_over_b"]
        print(f"{key:>5} connections: (d)/(c) = {d_c:.3f}, (d)/(b) = {d_b:.3f}")
    print(f"Hubgate peak RSS (all workers): {peak_kib / 1024:.1f} MiB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"proxy-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "duration_s": args.duration,
                "rounds": args.repeat,
                "workers": args.workers,
                "messages_per_page": args.messages,
                "cpus": os.cpu_count(),
                "results": results,
                "ratios": ratios,
                "hubgate_peak_rss_mib": round(peak_kib / 1024, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
