"""bench/proxy: a hub list call through several proxies in front of a near-free vendor stand-in.

(a) wrk straight to nginx serving a canned Twilio messages page; (b) nginx as a reverse proxy;
(c) a bare FastAPI + aiohttp pass-through (passthrough.py) on uvicorn; (e) a raw ASGI
pass-through with aiohttp's client (rawasgi.py) on uvicorn and on granian, the physical limit
of a Python proxy here; (d) Hubgate (`hubgate serve`) with every limit it depends on set
explicitly. At the extra level (50 connections) also: Hubgate with the hub rate limiter at its
default, driven through enough instances that no instance reaches it; Hubgate with metrics off;
Hubgate tracing 1 % of requests to a loopback OTLP receiver. With ``--baseline REV``, also
Hubgate as it was at a git revision (``d_at_<commit>``: that revision's src/, run on this
venv), in the same rounds: a change's before and after measured together, under the same load.
Every Python server runs the same number of worker processes. Loopback only, bounded in time.
``--profile`` and ``--syscalls`` look inside a served Hubgate instead (probes.py).

    .venv/bin/python bench/proxy/run.py [--duration 8] [--repeat 3] [--connections 1,50,200]
    .venv/bin/python bench/proxy/run.py --baseline 0e33724   # before issue 10's change, beside HEAD
    .venv/bin/python bench/proxy/run.py --syscalls --baseline 0e33724

Every wrk run is checked (bench/failures.py): a target with any non-2xx answer or socket
error prints no figure and no ratio, and the command exits 1. Prints a table and writes
bench/results/proxy-<UTC time>.json. Needs nginx and wrk from Debian's packages (installed
with apt-get when missing, as root) and granian from PyPI (installed into this venv with uv
when missing; a benchmark tool, not a dependency of Hubgate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.failures import Failures, paired_ratio  # noqa: E402
from bench.proxy.probes import count_syscalls, profile  # noqa: E402
from bench.proxy.wrk import PeakRss, Target, note_run, run_wrk  # noqa: E402
from hubgate.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
SID = "AC" + "0123456789abcdef" * 2
PAGE_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
GRANIAN = "granian==2.8.9"

# Every limit a measured Hubgate depends on, set here rather than inherited from defaults that
# may change: the hub rate limiter (D171) is opened so far that one instance never meets it
# (its own cost is row d_limited's), the auth-failure limiter is left as shipped (the benchmark
# never fails a credential), and the page, body and vendor-answer caps are far above the 6.5 KB
# page. The OTLP endpoint is unset unless a row turns tracing on.
_DEFAULTS = Settings.model_fields
HUB_LIMITS = {
    "HUBGATE_HUB_RATE_PER_SECOND": "1000000000",
    "HUBGATE_HUB_RATE_BURST": "1000000000",
    "HUBGATE_AUTH_FAILURE_BURST": str(_DEFAULTS["auth_failure_burst"].default),
    "HUBGATE_AUTH_FAILURE_WINDOW": str(_DEFAULTS["auth_failure_window"].default),
    "HUBGATE_PAGE_SIZE_MAX": "1000",
    "HUBGATE_MAX_BODY_BYTES": str(1024 * 1024),
    "HUBGATE_EGRESS_MAX_RESPONSE_BYTES": str(10 * 1024 * 1024),
    "HUBGATE_EGRESS_CONNECT_TIMEOUT": "5",
    "HUBGATE_EGRESS_READ_TIMEOUT": "30",
    "HUBGATE_HUB_RETRIES": "0",
    "HUBGATE_METRICS_ENABLED": "true",
    "HUBGATE_OTEL_ENDPOINT": "",
}
# The rate limiter as shipped: 50 calls a second per instance, bursts of 100.
DEFAULT_RATE = {
    "HUBGATE_HUB_RATE_PER_SECOND": str(_DEFAULTS["hub_rate_per_second"].default),
    "HUBGATE_HUB_RATE_BURST": str(_DEFAULTS["hub_rate_burst"].default),
}


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


class OtlpReceiver:
    """A loopback OTLP/HTTP collector that counts what it is sent and keeps nothing."""

    def __init__(self) -> None:
        counts = self.counts = {"requests": 0, "bytes": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                counts["bytes"] += len(self.rfile.read(size))
                counts["requests"] += 1
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ensure_granian() -> Path:
    granian = BIN / "granian"
    if not granian.exists():
        uv = [str(BIN / "uv"), "pip", "install", "--quiet", "--python", sys.executable, GRANIAN]
        subprocess.run(uv, check=True)
    return granian


def token_script(path: Path, tokens: list[str]) -> Path:
    """A wrk script sending each request with the next instance's Element token."""
    listed = ",\n".join(f'  "Element {token}"' for token in tokens)
    path.write_text(
        f"local tokens = {{\n{listed}\n}}\n"
        "local i = math.random(#tokens)\n"
        "request = function()\n"
        "  i = i % #tokens + 1\n"
        '  return wrk.format("GET", nil, {["Authorization"] = tokens[i]})\n'
        "end\n"
    )
    return path


def check_answers(name: str, target: Target, failures: Failures) -> None:
    """One request before any figure: a target that does not answer 200 is a failure."""
    headers = dict(target.headers)
    try:
        request = urllib.request.Request(target.url, headers=headers)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            failures.status(name, response.status, (200,))
    except urllib.error.HTTPError as error:
        failures.status(name, error.code, (200,))
    except OSError as error:
        failures.note(name, type(error).__name__)


def stop_on_sigterm() -> None:
    """A SIGTERM (a timeout, a kill without -9) ends the benchmark through its ``finally``, so
    that the nginx and servers it started stop with it instead of outliving it."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main() -> int:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--connections", default="1,50,200")
    parser.add_argument(
        "--extra-connections",
        type=int,
        default=50,
        help="the level of the limiter, metrics and tracing rows (0: leave them out)",
    )
    parser.add_argument(
        "--instances", type=int, default=200, help="instances the default-limit row spreads over"
    )
    parser.add_argument("--messages", type=int, default=10, help="messages on the canned page")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="HUBGATE_NAME=value",
        help="a setting of every measured `hubgate serve` (repeatable), after the benchmark's",
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="NAMES",
        help="comma-separated targets to measure (e.g. c_passthrough,d_hubgate); default: all",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="REV",
        help="also measure Hubgate at this git revision, in the same rounds (repeatable)",
    )
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="instead of the matrix, count each Hubgate's system calls per answer with strace",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the matrix, record Hubgate's workers with py-spy under 50 connections",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    overrides = dict(pair.split("=", 1) for pair in args.setting)
    ensure_tools()
    granian = ensure_granian()
    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    tmp.chmod(0o755)
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        # --profile measures (d) alone; --only names the targets ((a) always runs: the base).
        return not (args.profile or args.syscalls) and (only is None or name in only)

    hubs: dict[str, dict[str, str]] = {"d_hubgate": {}}
    extra_hubs = {
        "d_limited": DEFAULT_RATE,
        "d_metrics_off": {"HUBGATE_METRICS_ENABLED": "false"},
        "d_traced": {"HUBGATE_OTEL_SAMPLE_RATIO": "0.01"},
    }
    if args.extra_connections:
        hubs |= {name: env for name, env in extra_hubs.items() if wanted(name)}
    if only is not None and "d_hubgate" not in only and not (args.profile or args.syscalls):
        del hubs["d_hubgate"]
    # Each revision's package is imported, through its own path, before this checkout's.
    baselines: dict[str, str] = {}
    for revision in [] if args.profile else args.baseline:
        commit, source = baseline_source(revision, tmp / "baselines" / revision)
        baselines[f"d_at_{commit[:7]}"] = commit
        hubs[f"d_at_{commit[:7]}"] = {"PYTHONPATH": str(source)}
    ports = {name: free_port() for name in ("standin", "proxy", "pass", "e_uv", "e_gr", *hubs)}
    write_standin(tmp / "root", args.messages)
    (tmp / "nginx.conf").write_text(
        NGINX.format(
            tmp=tmp,
            root=tmp / "root",
            workers=args.workers,
            standin=ports["standin"],
            proxy=ports["proxy"],
        )
    )
    log = (tmp / "servers.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []
    otlp = OtlpReceiver()
    failures = Failures()
    load_before = os.getloadavg()

    def spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=log, stderr=log, cwd=ROOT
        )
        processes.append(process)
        return process

    try:
        spawn([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf")])
        standin = f"http://127.0.0.1:{ports['standin']}"
        upstream = {"BENCH_UPSTREAM": standin}
        uvicorn = [str(BIN / "uvicorn"), "--workers", str(args.workers), "--loop", "uvloop",
                   "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
        servers: dict[str, str] = {}
        pids: dict[str, int] = {}
        if wanted("c_passthrough"):
            pids["c_passthrough"] = spawn(
                [*uvicorn, "bench.proxy.passthrough:app", "--port", str(ports["pass"])], upstream
            ).pid
        if wanted("e_raw_uvicorn"):
            pids["e_raw_uvicorn"] = spawn(
                [*uvicorn, "bench.proxy.rawasgi:app", "--port", str(ports["e_uv"])], upstream
            ).pid
        if wanted("e_raw_granian"):
            pids["e_raw_granian"] = spawn(
                [str(granian), "--interface", "asgi", "--workers", str(args.workers),
                 "--loop", "uvloop", "--no-ws", "--log-level", "warning",
                 "--port", str(ports["e_gr"]), "bench.proxy.rawasgi:app"],
                upstream,
            ).pid  # fmt: skip
        for name, settings in hubs.items():
            env = {
                "HUBGATE_DATA_DIR": str(tmp / name),
                "HUBGATE_EGRESS_ALLOW": "127.0.0.0/8",
                "HUBGATE_LOG_LEVEL": "warning",
                "HUBGATE_EMBEDDED_WORKER": "false",
                **HUB_LIMITS,
                **({"HUBGATE_OTEL_ENDPOINT": otlp.url} if name == "d_traced" else {}),
                **settings,
                **overrides,
            }
            command = [str(BIN / "hubgate"), "serve", "--port", str(ports[name]),
                       "--workers", str(args.workers)]  # fmt: skip
            pids[name] = spawn(command, env).pid
            servers[name] = f"http://127.0.0.1:{ports[name]}/elements/api-v2"
            # One at a time: workers importing side by side on a busy machine miss uvicorn's
            # start-up health check and are restarted over and over.
            wait_http(f"{servers[name]}/hubs", timeout=180)
        wait_http(standin + PAGE_PATH)
        page = f"{PAGE_PATH}?PageSize=100&Page=0"
        targets: dict[str, Target] = {"a_direct": Target(standin + page)}
        if wanted("b_nginx"):
            targets["b_nginx"] = Target(f"http://127.0.0.1:{ports['proxy']}{page}")
        for name, port in (("c_passthrough", "pass"), ("e_raw_uvicorn", "e_uv"),
                           ("e_raw_granian", "e_gr")):  # fmt: skip
            if name in pids:
                targets[name] = Target(f"http://127.0.0.1:{ports[port]}{page}", pid=pids[name])
                # Started beside the Hubgates, but measured without them it may still be starting.
                wait_http(targets[name].url)
        for name, api in servers.items():
            count = args.instances if name == "d_limited" else 1
            tokens = provision(api, tmp / name, standin, count)
            element = {"Authorization": f"Element {tokens[0]}"}
            script = token_script(tmp / "tokens.lua", tokens) if name == "d_limited" else None
            targets[name] = Target(
                f"{api}/hubs/messaging/messages", element, script, pid=pids[name]
            )
        for name, target in targets.items():
            check_answers(name, target, failures)
        for target in targets.values():
            run_wrk(target, 8, 2)  # warm-up: connections, caches
        if args.syscalls:
            count_syscalls({name: targets[name] for name in hubs}, args.duration)
            return 0
        if args.profile:
            profile(pids["d_hubgate"], targets["d_hubgate"], args.duration)
            return 0
        extras = [n for n in ("d_limited", "d_metrics_off", "d_traced") if n in targets]
        matrix = [(c, n) for c in levels for n in targets if n not in extras]
        matrix += [(args.extra_connections, n) for n in extras]
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in targets}
        peak = 0
        spans_before = otlp.counts["requests"]
        # Rounds interleave the targets so that a burst of load from elsewhere on the machine
        # hits all of them alike; medians over the rounds are what the table shows.
        for _ in range(args.repeat):
            for connections, name in matrix:
                others = [pid for other, pid in pids.items() if other != name]
                with PeakRss(pids.get(name, os.getpid())) as rss:
                    run = run_wrk(targets[name], connections, args.duration, others)
                if name == "d_hubgate":
                    peak = max(peak, rss.peak)
                note_run(failures, f"{name} @{connections}", run)
                runs[name].setdefault(str(connections), []).append(run)
        time.sleep(6)  # the span processor's batch interval is 5 s
        if "d_traced" in targets and otlp.counts["requests"] == spans_before:
            failures.note(f"d_traced @{args.extra_connections}", "no spans reached the receiver")
    finally:
        for process in reversed(processes):
            process.terminate()  # uvicorn, granian and nginx masters stop their workers
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        otlp.close()
    results = {name: {k: summarize(v) for k, v in by.items()} for name, by in runs.items()}
    report(results, failures, peak, args, load_before, otlp.counts, baselines)
    shutil.rmtree(tmp, ignore_errors=True)
    return failures.exit_code()


def baseline_source(revision: str, into: Path) -> tuple[str, Path]:
    """The commit ``revision`` names, and a folder to import that revision's Hubgate from.

    The folder holds the revision's src/ and the package's entry points as its pyproject.toml
    declared them: the installed ones name this checkout's connectors, which an older
    revision may not have, and the first distribution of a name on the path is the one read.
    """
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--verify", f"{revision}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run([*git, "archive", commit, "src"], check=True, capture_output=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    pyproject = subprocess.run(
        [*git, "show", f"{commit}:pyproject.toml"], check=True, capture_output=True
    ).stdout
    project = tomllib.loads(pyproject.decode())["project"]
    info = into / "src" / f"hubgate-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: hubgate\nVersion: {project['version']}\n"
    )
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
            for group, points in groups.items()
        )
    )
    return commit, into / "src"


def provision(api: str, data_dir: Path, standin: str, count: int) -> list[str]:
    """``count`` Twilio instances on the stand-in; their Element tokens."""
    secrets = json.loads((data_dir / "bootstrap.json").read_text())
    user = f"User {secrets['user']['secret']}, Organization {secrets['organization']['secret']}"

    def create(i: int) -> str:
        body = {
            "element": {"key": "twiliov2"},
            "name": f"bench-{i}",
            "configuration": {
                "username": SID,
                "password": "bench-token",
                "base.url": f"{standin}/2010-04-01/Accounts",
            },
        }
        return str(post_json(f"{api}/instances", body, {"Authorization": user})["token"])

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(create, range(count)))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = {
        key: statistics.median(r[key] for r in runs)
        for key in ("cpu_us_per_req", "pg_cpu_us_per_req", "others_cpu_s")
        if all(key in r for r in runs)
    }
    return {
        **cpu,
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "max_ms": max(r.get("max_ms", 0.0) for r in runs),  # the slowest answer of any round
        "errors": sum(r["errors"] for r in runs),
        "runs": runs,
    }


def ratio_of(
    results: dict[str, dict[str, Any]],
    failures: Failures,
    top: str,
    bottom: str,
    level: int,
) -> float | str:
    """The paired ratio of two targets' throughput at one level, or why there is none."""
    key = str(level)
    if key not in results.get(top, {}) or key not in results.get(bottom, {}):
        return "not measured"
    failed = [n for n in (top, bottom) if not failures.clean(f"{n} @{level}")]
    if failed:
        return f"no ratio: {', '.join(failed)} failed"
    rounds = [[r["rps"] for r in results[n][key]["runs"]] for n in (top, bottom)]
    return round(paired_ratio(rounds[0], rounds[1]), 3)


def fastest_raw(results: dict[str, dict[str, Any]], failures: Failures, level: int) -> str | None:
    """(e): the faster server of the raw ASGI pass-through at this level, among clean ones."""
    clean = [
        n
        for n in ("e_raw_uvicorn", "e_raw_granian")
        if str(level) in results.get(n, {}) and failures.clean(f"{n} @{level}")
    ]
    return max(clean, key=lambda n: float(results[n][str(level)]["rps"]), default=None)


def report(
    results: dict[str, dict[str, Any]],
    failures: Failures,
    peak_kib: int,
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    spans: dict[str, int],
    baselines: dict[str, str],
) -> None:
    levels = sorted({int(k) for by in results.values() for k in by})
    print(f"{'conns':>5} {'target':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'+p50 ms':>8} {'+p99 ms':>8} {'CPU us/req':>10} {'pg us/req':>9} "
          f"{'others s':>8}")  # fmt: skip
    saved: dict[str, dict[str, Any]] = {}
    for level in levels:
        key = str(level)
        direct = results["a_direct"].get(key)
        for name, by_level in results.items():
            if key not in by_level:
                continue
            run = by_level[key]
            if direct is not None:
                run["added_p50_ms"] = round(run["p50_ms"] - direct["p50_ms"], 3)
                run["added_p99_ms"] = round(run["p99_ms"] - direct["p99_ms"], 3)
            target = f"{name} @{level}"
            failures.report(
                target,
                lambda run=run, name=name, level=level: (
                    f"{level:>5} {name:<15} {run['rps']:>9.0f} {run['p50_ms']:>8.3f} "
                    f"{run['p99_ms']:>8.3f} {run.get('added_p50_ms', 0):>8.3f} "
                    f"{run.get('added_p99_ms', 0):>8.3f} {run.get('cpu_us_per_req', ''):>10} "
                    f"{run.get('pg_cpu_us_per_req', ''):>9} {run.get('others_cpu_s', ''):>8}"
                ),
            )
            saved.setdefault(name, {})[key] = failures.figures(target, run)
    ratios: dict[str, Any] = {}
    for level in map(int, args.connections.split(",")):
        raw = fastest_raw(results, failures, level)
        ratios[f"d/c @{level}"] = ratio_of(results, failures, "d_hubgate", "c_passthrough", level)
        ratios[f"d/e @{level}"] = (
            ratio_of(results, failures, "d_hubgate", raw, level)
            if raw is not None
            else "no ratio: no raw ASGI server answered cleanly"
        )
        ratios[f"e is @{level}"] = raw
        ratios[f"d/b @{level}"] = ratio_of(results, failures, "d_hubgate", "b_nginx", level)
        for name in baselines:
            ratios[f"{name}/c @{level}"] = ratio_of(results, failures, name, "c_passthrough", level)
            ratios[f"d/{name} @{level}"] = ratio_of(results, failures, "d_hubgate", name, level)
    extra = args.extra_connections
    if extra:
        ratios[f"limiter at default/open @{extra}"] = ratio_of(
            results, failures, "d_limited", "d_hubgate", extra
        )
        ratios[f"metrics on/off @{extra}"] = ratio_of(
            results, failures, "d_hubgate", "d_metrics_off", extra
        )
        ratios[f"tracing 1%/off @{extra}"] = ratio_of(
            results, failures, "d_traced", "d_hubgate", extra
        )
    for name, value in ratios.items():
        print(f"{name}: {value}")
    if "d_hubgate" in results and failures.clean("d_hubgate @" + args.connections.split(",")[-1]):
        print(f"Hubgate peak RSS ({args.workers} workers and master): {peak_kib / 1024:.1f} MiB")
    load_after = os.getloadavg()
    print(f"load average: before {load_before}, after {tuple(round(x, 2) for x in load_after)}")
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
                "instances_of_d_limited": args.instances,
                "cpus": os.cpu_count(),
                "load_average_before": load_before,
                "load_average_after": load_after,
                "hub_settings": HUB_LIMITS,
                "baselines": baselines,
                "otlp_exports_received": spans,
                "results": saved,
                "ratios": ratios,
                "failures": failures.as_json(),
                "hubgate_peak_rss_mib": round(peak_kib / 1024, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
