"""The hub list call plain, through a 6-field transformation, and through one plus a script.

Three targets on one Hubgate (`hubgate serve`) and one instance, in front of nginx serving a
canned Twilio messages page (bench/proxy's stand-in): (a) `/hubs/messaging/messages`, the
vendor resource; (b) `/hubs/messaging/mapped`, a common resource whose instance
transformation maps 6 fields and removes the rest; (c) `/hubs/messaging/scripted`, the same
mapping plus a script that adds a field. wrk drives each at the same connection count, rounds
interleaving the targets; the table shows medians, the CPU time of Hubgate's process tree per
request, and the paired ratios (b)/(a), (c)/(a) (bench/failures.py: the median of per-round
ratios). A target with any non-2xx answer or
socket error gets no figure, and the command exits 1.

    .venv/bin/python bench/transform.py [--duration 8] [--repeat 3] [--connections 50]
        [--workers 2] [--messages 10] [--setting HUBGATE_NAME=value ...] [--out FILE]

Needs nginx and wrk from Debian's packages (as bench/proxy/run.py). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from failures import Failures, paired_ratio
from provision import settings_from
from proxy.run import (
    BIN,
    NGINX,
    PAGE_PATH,
    ROOT,
    SID,
    Target,
    ensure_tools,
    free_port,
    post_json,
    run_wrk,
    wait_http,
    write_standin,
)

RESULTS = ROOT / "bench" / "results"
TARGETS = ("a_plain", "b_mapped", "c_scripted")
TARGETS_MET = {"b_mapped": 0.85, "c_scripted": 0.60}
FIELDS = [
    {"path": "id", "type": "string"},
    {"path": "to", "type": "string"},
    {"path": "from", "type": "string"},
    {"path": "text", "type": "string"},
    {"path": "status", "type": "string"},
    {"path": "sentAt", "type": "date"},
]
MAPPING = [
    {"path": "id", "vendorPath": "sid"},
    {"path": "to", "vendorPath": "to", "vendorWritePath": "To"},
    {"path": "from", "vendorPath": "from", "vendorWritePath": "From"},
    {"path": "text", "vendorPath": "body", "vendorWritePath": "Body"},
    {"path": "status", "vendorPath": "status"},
    {"path": "sentAt", "vendorPath": "date_sent"},
]
SCRIPT = "transformedObject.length = transformedObject.text.length; done(transformedObject);"
REMOVE_UNMAPPED = [{"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}]


def set_up(api: str, user: dict[str, str], standin: str) -> dict[str, str]:
    """The instance and its two common resources; answers the Element header."""
    instance = post_json(
        f"{api}/instances",
        {
            "element": {"key": "twiliov2"},
            "name": "bench-transform",
            "configuration": {
                "username": SID,
                "password": "bench-token",
                "base.url": f"{standin}/2010-04-01/Accounts",
            },
        },
        user,
    )
    for name, script in (("mapped", None), ("scripted", SCRIPT)):
        fields = FIELDS + ([{"path": "length", "type": "number"}] if script else [])
        post_json(f"{api}/organizations/objects/{name}/definitions", {"fields": fields}, user)
        body: dict[str, Any] = {
            "vendorName": "messages",
            "fields": MAPPING,
            "configuration": REMOVE_UNMAPPED,
        }
        if script:
            body["script"] = {"body": script}
        post_json(f"{api}/instances/{instance['id']}/transformations/{name}", body, user)
    return {"Authorization": f"Element {instance['token']}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=10, help="messages on the canned page")
    parser.add_argument("--setting", action="append", default=[], help="HUBGATE_NAME=value")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="bench-transform-"))
    tmp.chmod(0o755)
    ports = {name: free_port() for name in ("standin", "proxy", "hub")}
    write_standin(tmp / "root", args.messages)
    (tmp / "nginx.conf").write_text(NGINX.format(tmp=tmp, root=tmp / "root", workers=1, **ports))
    log = (tmp / "servers.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []
    failures = Failures()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}

    def spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=log, stderr=log, cwd=ROOT
        )
        processes.append(process)
        return process

    try:
        spawn([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf")])
        standin = f"http://127.0.0.1:{ports['standin']}"
        data_dir = tmp / "hubgate"
        hub = spawn(
            [str(BIN / "hubgate"), "serve", "--port", str(ports["hub"]),
             "--workers", str(args.workers)],
            {"HUBGATE_DATA_DIR": str(data_dir), "HUBGATE_EGRESS_ALLOW": "127.0.0.0/8",
             "HUBGATE_LOG_LEVEL": "warning", "HUBGATE_EMBEDDED_WORKER": "false",
             # The per-instance limit (D-limits) would answer most calls 429: this measures
             # the pipeline, not the limiter.
             "HUBGATE_HUB_RATE_PER_SECOND": "1000000", "HUBGATE_HUB_RATE_BURST": "1000000",
             **settings_from(args.setting)},
        )  # fmt: skip
        api = f"http://127.0.0.1:{ports['hub']}/elements/api-v2"
        wait_http(standin + PAGE_PATH)
        wait_http(f"{api}/hubs", timeout=120)
        secrets = json.loads((data_dir / "bootstrap.json").read_text())
        user = {
            "Authorization": f"User {secrets['user']['secret']}, "
            f"Organization {secrets['organization']['secret']}"
        }
        element = set_up(api, user, standin)
        urls = {
            "a_plain": f"{api}/hubs/messaging/messages",
            "b_mapped": f"{api}/hubs/messaging/mapped",
            "c_scripted": f"{api}/hubs/messaging/scripted",
        }
        for url in urls.values():
            # Warm-up: connections, caches, each worker's mappings.
            run_wrk(Target(url, element), 8, 2)
        # Rounds interleave the targets, each round starting one target later, so a burst of
        # load from elsewhere on the machine hits all three alike.
        order = list(urls.items())
        for round_number in range(args.repeat):
            shift = round_number % len(order)
            for name, url in order[shift:] + order[:shift]:
                run = run_wrk(Target(url, element, pid=hub.pid), args.connections, args.duration)
                failures.note(name, "non-2xx answers", run["non_2xx"])
                for kind, count in run["socket_errors"].items():
                    failures.note(name, f"socket {kind} errors", count)
                runs[name].append(run)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, failures, args)
    return failures.exit_code()


def report(runs: dict[str, list[dict[str, Any]]], failures: Failures, args: Any) -> None:
    load = os.getloadavg()
    print(f"{args.connections} connections, {args.repeat} rounds of {args.duration} s, "
          f"{args.messages} messages a page, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}")  # fmt: skip
    print(
        f"{'target':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>7} {'of plain':>9} "
        f"{'target':>7}"
    )
    saved: dict[str, Any] = {}
    plain = [r["rps"] for r in runs["a_plain"]]
    for name in TARGETS:
        own = [r["rps"] for r in runs[name]]
        figures: dict[str, Any] = {
            "rps": statistics.median(own),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs[name]),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs[name]),
            # CPU time of Hubgate's process tree (server workers and sandbox processes, not
            # PostgreSQL) per request: what the load on a shared machine barely moves.
            "cpu_ms_per_req": statistics.median(r["cpu_us_per_req"] for r in runs[name]) / 1000,
            "runs": runs[name],
        }
        if name != "a_plain" and failures.clean("a_plain"):
            figures["ratio_to_plain"] = round(paired_ratio(own, plain), 3)
            figures["target_ratio"] = TARGETS_MET[name]
        saved[name] = failures.figures(name, figures)

        def line(name: str = name, figures: dict[str, Any] = figures) -> str:
            ratio = figures.get("ratio_to_plain")
            goal = TARGETS_MET.get(name)
            return (
                f"{name:<12} {figures['rps']:>9.0f} {figures['p50_ms']:>8.3f} "
                f"{figures['p99_ms']:>8.3f} {figures['cpu_ms_per_req']:>7.3f} "
                f"{'' if ratio is None else f'{ratio:.3f}':>9} "
                f"{'' if goal is None else f'>={goal:.2f}':>7}"
            )

        failures.report(name, line)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS / f"transform-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.repeat,
                "workers": args.workers,
                "messages_per_page": args.messages,
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in load],
                "results": saved,
                "failures": failures.as_json(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {out}")


if __name__ == "__main__":
    sys.exit(main())
