"""Events: polls per second, deliveries per second with signing, vendor change to callback.

An embedded PostgreSQL in a temporary data dir, the Twilio simulator as its own process, a
callback receiver in this process, and ``hubgate worker`` processes whose CPU time is read from
/proc. Instances are provisioned in this process (credential check included) on simulator
accounts of their own.

1. Polls: every poller made due at once (what the clock does each interval), timed until each
   has polled once more; the first round primes, later rounds find a new message on 10% of
   accounts. CPU of the worker and of PostgreSQL per poll, and the share of a core that
   10,000 polls every 15 minutes take: measured with ``--instances 10000 --interval-minutes
   15 --tick-seconds 60 --phases polls`` (instances made through the service layer, 8 at a
   time; production's tick, since a tick's own work grows with the instances).
2. Deliveries: events committed with their jobs queued, then one worker started and timed
   until the receiver has accepted a notification for every distinct webhook id.
3. Latency: all instances poll once a minute; messages arrive on random accounts; the time
   from the message to its notification at the receiver.
4. Intake: ``hubgate serve`` (with its worker) and one webhook-mode instance; rounds of
   distinct status callbacks, signed by Twilio's own library, posted by many clients at once:
   callbacks acknowledged per second, and events per second from the first POST to the
   receiver's acceptance of the last notification; CPU per callback of serve's API process
   (while the callbacks are posted), of its embedded worker and of PostgreSQL (until the last
   notification is accepted), from /proc.
5. Webhook latency: callbacks at a gentle rate; from the start of each POST to its
   notification's acceptance at the receiver, p50 and p99 (medians of three rounds).

Every notification's `Elements-Webhook-Signature` and Standard Webhooks signature are checked
against the key; a bad signature, a notification missing by the deadline or accepted twice
(the same webhook id), or a poll round that does not finish is a failure of its phase
(bench/failures.py): that phase prints and saves no figure and the command exits 1.

    .venv/bin/python bench/events.py [--instances 1000] [--deliveries 5000] [--watch 120]
        [--phases polls,deliveries,latency,intake,webhook-latency] [--deliver-within 600]
        [--receiver-fails 0] [--delivery-rounds 3] [--callbacks 3000] [--clients 32]
        [--webhook-seconds 20] [--webhook-rate 10] [--interval-minutes 1] [--tick-seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from standardwebhooks import Webhook, WebhookVerificationError
from twilio.request_validator import RequestValidator

from hubgate.bootstrap import create_tenant
from hubgate.db.embedded import start_embedded
from hubgate.db.engine import unit_of_work
from hubgate.db.migrate import upgrade
from hubgate.db.tenancy import Tenant
from hubgate.events import service
from hubgate.events.changes import CREATED, Change, digest
from hubgate.events.tasks import defer_dispatch
from hubgate.instances.models import Instance
from hubgate.instances.schemas import InstanceCreate
from hubgate.instances.service import provision
from hubgate.jobs.worker import stop_worker
from hubgate.kit.crypto import Keyring
from hubgate.runtime import Runtime, open_runtime
from hubgate.settings import Settings
from sims.receiver import CallbackReceiver, Received

sys.path.insert(0, str(Path(__file__).parent))
from failures import Failures

RESULTS = Path(__file__).parent / "results"
KEY = "bench signature key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# 10,000 instances every 15 minutes: the target's poll rate.
TARGET_POLLS_PER_SECOND = 10_000 / (15 * 60)
# The target's interval and share of a core for those polls, worker and PostgreSQL together.
TARGET_ROUND_SECONDS = 15 * 60
TARGET_CORE_SHARE = 0.25
SETUP_CONCURRENCY = 8
# A poll round ends when every instance has its poller and each has polled once more.
POLLS_MADE = "SELECT coalesce(sum(polls), 0) FROM event_pollers"
ROUND_DONE = "SELECT count(*) >= %s AND coalesce(min(polls), 0) >= %s FROM event_pollers"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds(parent: int) -> float:
    """User + system CPU time of the live children of ``parent`` (serve's embedded worker)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


async def until(
    condition: Callable[[], bool], interval: float = 0.05, seconds: float = 600
) -> bool:
    """Whether ``condition`` came to hold within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def elements_signature_holds(request: Received) -> bool:
    """Open Connectors' scheme, computed here rather than by Hubgate's own signer."""
    mac = hmac.new(KEY.encode(), request.body, hashlib.sha256).digest()
    expected = "sha256=" + base64.b64encode(mac).decode()
    return hmac.compare_digest(request.headers.get("elements-webhook-signature", ""), expected)


def accepted(requests: list[Received]) -> list[Received]:
    """The notifications the receiver took (a 2xx); the others Hubgate must send again."""
    return [r for r in requests if 200 <= r.status < 300]


def check_notifications(failures: Failures, target: str, requests: list[Received]) -> int:
    """Both signatures of every accepted notification, and no webhook id accepted twice.

    Returns the number of distinct webhook ids accepted.
    """
    verifier = Webhook(KEY.encode())
    taken = accepted(requests)
    for request in taken:
        if not elements_signature_holds(request):
            failures.note(target, "bad Elements-Webhook-Signature")
        try:
            verifier.verify(request.body, request.headers)
        except WebhookVerificationError:
            failures.note(target, "bad Standard Webhooks signature")
    ids = [r.webhook_id for r in taken]
    failures.note(target, "notification accepted twice", len(ids) - len(set(ids)))
    return len(set(ids))


def postgres_cpu_seconds(data: Path) -> float:
    """CPU time of the embedded server's processes (postmaster and its children)."""
    postmaster = int((data / "pg" / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


class Bench:
    def __init__(
        self,
        data: Path,
        instances: int,
        deliver_within: float,
        interval_minutes: int = 1,
        tick_seconds: int = 1,
    ) -> None:
        self.data = data
        self.tick_seconds = tick_seconds
        self.interval_minutes = interval_minutes
        self.failures = Failures()
        self.deliver_within = deliver_within
        self.count = instances
        self.sim_port = free_port()
        self.url = start_embedded(data, database="bench")
        upgrade(self.url)
        self.keyring = Keyring.generate().to_json()
        self.settings = Settings(
            data_dir=data,
            database_url=self.url,
            keyring=self.keyring,
            egress_allow="127.0.0.0/8",
            log_level="warning",
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUBGATE_")}
        self.env.update(
            HUBGATE_DATABASE_URL=self.url,
            HUBGATE_KEYRING=self.keyring,
            HUBGATE_DATA_DIR=str(data),
            HUBGATE_EGRESS_ALLOW="127.0.0.0/8",
            HUBGATE_LOG_LEVEL="warning",
            HUBGATE_EVENTS_TICK_SECONDS=str(tick_seconds),
            HUBGATE_EVENTS_RETRY_JITTER="0",
        )
        self.processes: list[subprocess.Popen[bytes]] = []
        self.receiver = CallbackReceiver()
        self.accounts: list[str] = []
        self.instance_ids: list[int] = []
        self.serving: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.data / "processes.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hubgate", *args],
                env={**self.env, **env},
                stdout=log,
                stderr=log,
            )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        stop_worker(process)  # SIGTERM, then SIGKILL after 30 s: right for the simulator too

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            row = cursor.fetchone() if cursor.description else None
            return row[0] if row else None

    async def sim(self, http: aiohttp.ClientSession, path: str, body: Any) -> Any:
        url = f"http://127.0.0.1:{self.sim_port}/_sim/{path}"
        async with http.post(url, json=body) as answer:
            return await answer.json()

    async def setup(self, http: aiohttp.ClientSession, runtime: Runtime) -> None:
        self.start("sim", "twilio", "--port", str(self.sim_port))
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{self.sim_port}/_sim/health"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        await self.receiver.start()
        created = await create_tenant(self.settings, self.url, name="bench", email="b@x.test")
        tenant = Tenant(created.organization_id, created.account_id, created.user_id, "b@x.test")
        self.tenant = tenant
        base_url = f"http://127.0.0.1:{self.sim_port}/2010-04-01/Accounts"
        self.accounts = [""] * self.count
        self.instance_ids = [0] * self.count
        # Made through the service layer (credential check included) a few at a time: 10,000
        # one by one take long for no better instances.
        slots = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def make(n: int) -> None:
            async with slots:
                await self.make_instance(http, runtime, base_url, n)

        await asyncio.gather(*(make(n) for n in range(self.count)))

    async def make_instance(
        self, http: aiohttp.ClientSession, runtime: Runtime, base_url: str, n: int
    ) -> None:
        account = await self.sim(http, "accounts", {})
        body = InstanceCreate(
            name=f"bench-{n}",
            element={"key": "twiliov2"},  # type: ignore[arg-type]
            configuration={
                "username": account["accountSid"],
                "password": account["authToken"],
                "base.url": base_url,
                "event.notification.enabled": True,
                "event.notification.callback.url": self.receiver.url,
                "event.notification.signature.key": KEY,
                "event.poller.refresh_interval": self.interval_minutes,
            },
        )
        async with unit_of_work(runtime.sessions) as session:
            instance, _ = await provision(session, runtime, self.tenant, body)
        self.accounts[n] = account["accountSid"]
        self.instance_ids[n] = instance.id
        for k in range(3):
            await self.inbound(http, account["accountSid"], f"hello {k}")

    async def inbound(self, http: aiohttp.ClientSession, account: str, text: str) -> str:
        message = await self.sim(
            http,
            "inbound",
            {"from": "+15005550006", "to": "+15005550001", "body": text, "accountSid": account},
        )
        sid: str = message["sid"]
        return sid

    async def polls(
        self, http: aiohttp.ClientSession, rounds: int, idle_seconds: float
    ) -> list[dict[str, Any]]:
        """Rounds in which every poller is due at once (what the clock does each interval),
        timed until each has polled once more; CPU of the worker and of PostgreSQL per poll
        made, and the share of a core that 10,000 such polls every 15 minutes take (measured
        when there are 10,000 instances). Every poll must succeed."""
        worker = self.start("worker", HUBGATE_WORKER_CONCURRENCY="32")
        rows = []
        for number in range(rounds + 1):
            if number:
                for account in random.sample(self.accounts, max(1, self.count // 10)):
                    await self.inbound(http, account, f"round {number}")
            polled = int(self.sql(POLLS_MADE))
            cpu = cpu_seconds(worker.pid)
            database = postgres_cpu_seconds(self.data)
            started = time.monotonic()
            if number:  # round 0 is the first poll, due as soon as events are on
                self.sql("UPDATE event_pollers SET next_poll_at = now()")
            # Every poller once more (the fewest polls of any), all instances' pollers there.
            goal = (self.count, number + 1)
            if not await until(
                lambda goal=goal: bool(self.sql(ROUND_DONE, goal)), 0.2, self.deliver_within
            ):
                self.failures.note("polls", f"round {number} unfinished")
                break
            elapsed = time.monotonic() - started
            used = cpu_seconds(worker.pid) - cpu
            database = postgres_cpu_seconds(self.data) - database
            # Pollers polled early in a long round may be due again before it ends.
            made = int(self.sql(POLLS_MADE)) - polled
            failed = "SELECT count(*) FROM event_pollers WHERE consecutive_failures > 0"
            self.failures.note("polls", "poll failed", self.sql(failed))
            per_poll = (used + database) / made
            rows.append(
                {
                    "round": "priming" if number == 0 else f"changes on 10% ({number})",
                    "polls": made,
                    "seconds": round(elapsed, 2),
                    "polls_per_second": round(made / elapsed, 1),
                    "worker_cpu_seconds": round(used, 2),
                    "postgres_cpu_seconds": round(database, 2),
                    "cpu_ms_per_poll": round(used / made * 1000, 2),
                    "postgres_cpu_ms_per_poll": round(database / made * 1000, 2),
                    "core_share_at_10k_per_15_min": round(
                        per_poll * 10_000 / TARGET_ROUND_SECONDS, 3
                    ),
                }
            )
        await asyncio.sleep(3)  # deliveries of the last round settle
        cpu = cpu_seconds(worker.pid)
        database = postgres_cpu_seconds(self.data)
        await asyncio.sleep(idle_seconds)
        idle = (cpu_seconds(worker.pid) - cpu) / idle_seconds
        idle_database = (postgres_cpu_seconds(self.data) - database) / idle_seconds
        rows.append(
            {
                "round": f"idle ({self.tick_seconds} s ticks)",
                "tick_seconds": self.tick_seconds,
                "worker_cpu_share": round(idle, 4),
                "postgres_cpu_share": round(idle_database, 4),
            }
        )
        self.stop(worker)
        return rows

    async def deliveries(self, runtime: Runtime, count: int, rounds: int) -> dict[str, Any]:
        """Rounds of ``count`` notifications, each delivered by a fresh worker; the figures
        are the medians of the rounds (a failed round ends the phase: no figure)."""
        done = []
        for number in range(rounds):
            done.append(await self.delivery_round(runtime, count, number))
            if not self.failures.clean("deliveries"):
                break
        medians = {
            key: statistics.median(r[key] for r in done)
            for key in done[0]
            if key.endswith(("per_second", "per_delivery", "seconds"))
        }
        return {
            "notifications": count,
            "rounds": done,
            "distinct_webhook_ids": min(r["distinct_webhook_ids"] for r in done),
            **medians,
        }

    async def delivery_round(self, runtime: Runtime, count: int, number: int) -> dict[str, Any]:
        self.receiver.requests.clear()
        ids = []
        per_instance = max(1, count // 100)
        for offset in range(0, count, per_instance):
            instance_id = self.instance_ids[(offset // per_instance) % len(self.instance_ids)]
            found = [
                Change(
                    "messages",
                    f"SMb{number}x{offset + i}",
                    CREATED,
                    {"sid": f"SMb{number}x{offset + i}"},
                    digest({"n": offset + i, "round": number}),
                )
                for i in range(min(per_instance, count - offset))
            ]
            async with unit_of_work(runtime.sessions) as session:
                instance = await session.get(Instance, instance_id)
                assert instance is not None
                # One change per notification, as a receiver of single updates sees them.
                for change in found:
                    ids += await service.record_vendor_changes(
                        session, runtime, instance, [change], service.utcnow()
                    )
        # What a poll or a vendor webhook does after its commit: one batched run (D310).
        await defer_dispatch(runtime.jobs)
        worker = self.start("worker", HUBGATE_WORKER_CONCURRENCY="64")
        await until(lambda: bool(self.receiver.requests), 0.01, self.deliver_within)
        started = time.monotonic()
        cpu = cpu_seconds(worker.pid)
        database = postgres_cpu_seconds(self.data)
        own = time.process_time()

        def every_id_accepted() -> bool:
            return len({r.webhook_id for r in accepted(self.receiver.requests)}) >= count

        # Distinct ids, not requests: a notification sent again must not stop the clock early.
        await until(every_id_accepted, 0.02, self.deliver_within)
        elapsed = time.monotonic() - started
        used = cpu_seconds(worker.pid) - cpu
        database = postgres_cpu_seconds(self.data) - database
        own = time.process_time() - own
        notified = "SELECT count(*) FROM events WHERE status = 'NOTIFIED'"
        # The rounds before this one were all notified (a failed round ends the phase).
        expected = count * (number + 1)
        await until(lambda: self.sql(notified) >= expected, seconds=min(60, self.deliver_within))
        self.stop(worker)
        target = "deliveries"
        distinct = check_notifications(self.failures, target, self.receiver.requests)
        self.failures.note(target, "notification missing", count - distinct)
        self.failures.note(target, "event not NOTIFIED", expected - self.sql(notified))
        return {
            "distinct_webhook_ids": distinct,
            "seconds": round(elapsed, 2),
            "deliveries_per_second": round(count / elapsed, 1),
            "worker_cpu_seconds": round(used, 2),
            "cpu_ms_per_delivery": round(used / count * 1000, 3),
            "postgres_cpu_ms_per_delivery": round(database / count * 1000, 3),
            "receiver_cpu_ms_per_delivery": round(own / count * 1000, 3),
        }

    async def latency(self, http: aiohttp.ClientSession, watch: float) -> dict[str, Any]:
        """Changes on random accounts while every instance polls once a minute."""
        self.receiver.requests.clear()
        self.sql("UPDATE event_pollers SET next_poll_at = now() + random() * interval '60 s'")
        worker = self.start("worker", HUBGATE_WORKER_CONCURRENCY="32")
        await asyncio.sleep(5)
        made: dict[str, float] = {}
        deadline = time.monotonic() + watch
        while time.monotonic() < deadline:
            account = random.choice(self.accounts)
            made[await self.inbound(http, account, "latency")] = time.monotonic()
            await asyncio.sleep(0.25)
        drain = time.monotonic() + 70
        arrived: dict[str, float] = {}
        while time.monotonic() < drain and len(arrived) < len(made):
            for request in accepted(self.receiver.requests):
                for raw in request.json()["message"]["raw"].get("messages", []):
                    if raw.get("sid") in made:
                        arrived.setdefault(raw["sid"], request.at)
            await asyncio.sleep(0.5)
        self.stop(worker)
        check_notifications(self.failures, "latency", self.receiver.requests)
        self.failures.note("latency", "notification missing", len(made) - len(arrived))
        latencies = [arrived[sid] - made[sid] for sid in arrived]
        return {
            "changes": len(made),
            "notified": len(arrived),
            "p50_seconds": round(statistics.median(latencies), 1) if latencies else 0,
            "p99_seconds": round(percentile(latencies, 0.99), 1),
            "max_seconds": round(max(latencies), 1) if latencies else 0,
        }

    async def serve(self, http: aiohttp.ClientSession, runtime: Runtime) -> dict[str, Any]:
        """``hubgate serve`` (with its embedded worker) and one webhook-mode instance; the
        instance's events URL and the Auth Token that signs its callbacks."""
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        self.serving = self.start("serve", "--port", str(port), HUBGATE_PUBLIC_URL=public)
        for _ in range(600):
            try:
                async with http.get(f"{public}/healthz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        account = await self.sim(http, "accounts", {})
        body = InstanceCreate(
            name="bench-webhooks",
            element={"key": "twiliov2"},  # type: ignore[arg-type]
            configuration={
                "username": account["accountSid"],
                "password": account["authToken"],
                "base.url": f"http://127.0.0.1:{self.sim_port}/2010-04-01/Accounts",
                "event.notification.enabled": True,
                "event.notification.callback.url": self.receiver.url,
                "event.notification.signature.key": KEY,
                "event.vendor.type": "webhook",
            },
        )
        async with unit_of_work(runtime.sessions) as session:
            instance, _ = await provision(session, runtime, self.tenant, body)
        encoded = base64.b64encode(str(instance.id).encode()).decode()
        return {
            "url": f"{public}/elements/api-v2/events/twiliov2/{encoded}",
            "account": account["accountSid"],
            "token": account["authToken"],
        }

    def callback(self, target: dict[str, Any], sid: str) -> tuple[str, dict[str, str]]:
        """A status callback as Twilio posts it, signed by Twilio's own library."""
        params = {
            "AccountSid": target["account"],
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
            "ApiVersion": "2010-04-01",
        }
        signature = RequestValidator(target["token"]).compute_signature(target["url"], params)
        return signature, params

    async def post_all(
        self, http: aiohttp.ClientSession, target: dict[str, Any], queue: list[str], name: str
    ) -> None:
        """One client: posts callbacks for the sids it takes from ``queue`` until it is empty."""
        while queue:
            await self.post_callback(http, target, queue.pop(), name)

    async def post_callback(
        self, http: aiohttp.ClientSession, target: dict[str, Any], sid: str, name: str
    ) -> None:
        signature, params = self.callback(target, sid)
        headers = {"X-Twilio-Signature": signature}
        try:
            async with http.post(target["url"], data=params, headers=headers) as answer:
                await answer.read()
                if answer.status != 200:
                    self.failures.note(name, f"status {answer.status}")
        except aiohttp.ClientError as error:
            self.failures.note(name, type(error).__name__)

    async def wait_arrivals(self, sids: set[str], seconds: float) -> dict[str, float]:
        """The arrivals of ``sids`` once all came, or those that came within ``seconds``."""
        await until(lambda: len(self.arrivals(sids)) >= len(sids), 0.1, seconds)
        return self.arrivals(sids)

    def arrivals(self, sids: set[str]) -> dict[str, float]:
        """When each callback's notification was accepted by the receiver (first time)."""
        arrived: dict[str, float] = {}
        for request in accepted(self.receiver.requests):
            for raw in request.json()["message"]["raw"].get("messages", []):
                sid = raw.get("MessageSid")
                if sid in sids:
                    arrived.setdefault(sid, request.at)
        return arrived

    async def intake(
        self, http: aiohttp.ClientSession, target: dict[str, Any], count: int, clients: int
    ) -> dict[str, Any]:
        """Rounds of ``count`` distinct signed status callbacks from ``clients`` at once:
        acknowledged per second, and notified per second (first POST to last acceptance)."""
        rounds = []
        for number in range(3):
            self.receiver.requests.clear()
            sids = [f"SM{number:02d}{n:030d}" for n in range(count)]
            queue = list(reversed(sids))
            cpu = self.serve_cpu()
            started = time.monotonic()
            await asyncio.gather(
                *(self.post_all(http, target, queue, "intake") for _ in range(clients))
            )
            acknowledged = time.monotonic() - started
            answering = self.serve_cpu()
            arrived = await self.wait_arrivals(set(sids), self.deliver_within)
            delivered = self.serve_cpu()
            check_notifications(self.failures, "intake", self.receiver.requests)
            self.failures.note("intake", "notification missing", count - len(arrived))
            if not self.failures.clean("intake"):
                break
            end_to_end = max(arrived.values()) - started
            rounds.append(
                {
                    "acknowledged_per_second": round(count / acknowledged, 1),
                    "events_per_second": round(count / end_to_end, 1),
                    # While the callbacks were posted: the API process (serve), which takes them.
                    "serve_cpu_ms_per_callback": round((answering[0] - cpu[0]) / count * 1000, 3),
                    # Until the last notification arrived: serve's embedded worker (deliveries)
                    # and PostgreSQL (the intake's statements and the deliveries').
                    "worker_cpu_ms_per_callback": round((delivered[1] - cpu[1]) / count * 1000, 3),
                    "postgres_cpu_ms_per_callback": round(
                        (delivered[2] - cpu[2]) / count * 1000, 3
                    ),
                }
            )
        keys = (
            "acknowledged_per_second",
            "events_per_second",
            "serve_cpu_ms_per_callback",
            "postgres_cpu_ms_per_callback",
            "worker_cpu_ms_per_callback",
        )
        return {
            "callbacks": count,
            "clients": clients,
            "rounds": rounds,
            **{key: statistics.median(r[key] for r in rounds) for key in keys if rounds},
        }

    def serve_cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of serve's API process, its embedded worker, and PostgreSQL."""
        assert self.serving is not None
        pid = self.serving.pid
        return cpu_seconds(pid), children_cpu_seconds(pid), postgres_cpu_seconds(self.data)

    async def webhook_latency(
        self, http: aiohttp.ClientSession, target: dict[str, Any], seconds: float, rate: float
    ) -> dict[str, Any]:
        """Callbacks at a gentle ``rate``: from the start of each POST to its notification's
        acceptance at the receiver, in three rounds; p50 and p99 are medians of the rounds."""
        rounds = []
        for number in range(3):
            self.receiver.requests.clear()
            posted: dict[str, float] = {}
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                sid = f"SMl{number}{n:030d}"
                n += 1
                posted[sid] = time.monotonic()
                await self.post_callback(http, target, sid, "webhook latency")
                await asyncio.sleep(max(0.0, posted[sid] + 1 / rate - time.monotonic()))
            arrived = await self.wait_arrivals(set(posted), 60)
            check_notifications(self.failures, "webhook latency", self.receiver.requests)
            self.failures.note(
                "webhook latency", "notification missing", len(posted) - len(arrived)
            )
            if not self.failures.clean("webhook latency"):
                break
            latencies = [(arrived[sid] - posted[sid]) * 1000 for sid in arrived]
            rounds.append(
                {
                    "callbacks": len(posted),
                    "p50_ms": round(statistics.median(latencies), 1),
                    "p99_ms": round(percentile(latencies, 0.99), 1),
                }
            )
        return {
            "rate_per_second": rate,
            "rounds": rounds,
            **{
                key: statistics.median(r[key] for r in rounds)
                for key in ("p50_ms", "p99_ms")
                if rounds
            },
        }

    def close(self) -> None:
        for process in self.processes:
            self.stop(process)


PHASES = ("polls", "deliveries", "latency", "intake", "webhook-latency")


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], Failures]:
    data = Path(tempfile.mkdtemp(prefix="hubgate-bench-events-"))
    bench = Bench(
        data, args.instances, args.deliver_within, args.interval_minutes, args.tick_seconds
    )
    bench.receiver.fail_next(args.receiver_fails, 500)
    runtime = await open_runtime(bench.settings, bench.url)
    measured: dict[str, Any] = {}
    try:
        # The client drops an idle connection before serve's server does (uvicorn: after 5 s),
        # so that a round started after a long wait never writes on a connection the server is
        # closing (a "connection reset" in a loaded run, between intake rounds).
        connector = aiohttp.TCPConnector(keepalive_timeout=2)
        async with aiohttp.ClientSession(connector=connector) as http:
            started = time.monotonic()
            await bench.setup(http, runtime)
            print(f"set up {args.instances} instances in {time.monotonic() - started:.0f} s")
            if "polls" in args.phases:
                measured["polls"] = await bench.polls(http, args.rounds, args.idle_seconds)
                print("polls done", flush=True)
            if "deliveries" in args.phases:
                measured["deliveries"] = await bench.deliveries(
                    runtime, args.deliveries, args.delivery_rounds
                )
                print("deliveries done", flush=True)
            if "latency" in args.phases:
                measured["latency"] = await bench.latency(http, args.watch)
            if "intake" in args.phases or "webhook-latency" in args.phases:
                target = await bench.serve(http, runtime)
                if "intake" in args.phases:
                    measured["intake"] = await bench.intake(
                        http, target, args.callbacks, args.clients
                    )
                    print("intake done", flush=True)
                if "webhook-latency" in args.phases:
                    measured["webhook_latency"] = await bench.webhook_latency(
                        http, target, args.webhook_seconds, args.webhook_rate
                    )
    finally:
        await runtime.close()
        await bench.receiver.stop()
        bench.close()
    return measured, bench.failures


def summary(result: dict[str, Any], failures: Failures) -> dict[str, Any]:
    """The headline figures of the phases that ran and failed nothing."""
    figures: dict[str, Any] = {}
    if "polls" in result and failures.clean("polls"):
        changed = [r for r in result["polls"] if str(r["round"]).startswith("changes")]
        idle = next(r for r in result["polls"] if "worker_cpu_share" in r)
        # The ticks' own cost at production's 60 s (the bench ticks every second unless told).
        tick_share = idle["worker_cpu_share"] + idle["postgres_cpu_share"]
        ticks = tick_share * idle["tick_seconds"] / 60
        median = statistics.median
        round_seconds = median(r["seconds"] * 10_000 / r["polls"] for r in changed)
        share = median(r["core_share_at_10k_per_15_min"] for r in changed) + ticks
        measured = result["instances"] >= 10_000
        figures.update(
            median_polls_per_second=median(r["polls_per_second"] for r in changed),
            median_cpu_ms_per_poll=round(median(r["cpu_ms_per_poll"] for r in changed), 2),
            median_postgres_cpu_ms_per_poll=round(
                median(r["postgres_cpu_ms_per_poll"] for r in changed), 2
            ),
            target_polls_per_second=round(TARGET_POLLS_PER_SECOND, 2),
            polls_at_10k="measured" if measured else "extrapolated from fewer instances",
            round_seconds_at_10k=round(round_seconds, 1),
            core_share_at_10k_per_15_min=round(share, 3),
            meets_target=round_seconds <= TARGET_ROUND_SECONDS and share < TARGET_CORE_SHARE,
        )
    if "deliveries" in result and failures.clean("deliveries"):
        figures["deliveries_per_second"] = result["deliveries"]["deliveries_per_second"]
    if "intake" in result and failures.clean("intake"):
        intake = result["intake"]
        figures["intake_acknowledged_per_second"] = intake["acknowledged_per_second"]
        figures["intake_events_per_second"] = intake["events_per_second"]
    if "webhook_latency" in result and failures.clean("webhook latency"):
        figures["webhook_p50_ms"] = result["webhook_latency"]["p50_ms"]
        figures["webhook_p99_ms"] = result["webhook_latency"]["p99_ms"]
    return figures


def show(result: dict[str, Any], failures: Failures) -> None:
    if "polls" in result:
        head = f"{'round':<24} {'polls':>6} {'s':>7} {'polls/s':>8} {'cpu s':>7} "
        head += f"{'cpu ms/poll':>12} {'pg ms/poll':>11} {'core share 10k/15 min':>22}"
        failures.report("polls", lambda: head)
        for row in result["polls"] if failures.clean("polls") else []:
            if "polls" in row:
                print(
                    f"{row['round']:<24} {row['polls']:>6} {row['seconds']:>7} "
                    f"{row['polls_per_second']:>8} {row['worker_cpu_seconds']:>7} "
                    f"{row['cpu_ms_per_poll']:>12} {row['postgres_cpu_ms_per_poll']:>11} "
                    f"{row['core_share_at_10k_per_15_min']:>22}"
                )
            else:
                print(
                    f"{row['round']:<24} CPU share: worker {row['worker_cpu_share']}, "
                    f"PostgreSQL {row['postgres_cpu_share']}"
                )
    if "deliveries" in result:
        d = result["deliveries"]
        failures.report(
            "deliveries",
            lambda: (
                f"deliveries (median of {len(d['rounds'])}): {d['notifications']} in "
                f"{d['seconds']} s = "
                f"{d['deliveries_per_second']}/s, CPU ms each: worker {d['cpu_ms_per_delivery']}, "
                f"PostgreSQL {d['postgres_cpu_ms_per_delivery']}, receiver "
                f"{d['receiver_cpu_ms_per_delivery']}; {d['distinct_webhook_ids']} distinct ids"
            ),
        )
    if "latency" in result:
        lat = result["latency"]
        failures.report(
            "latency",
            lambda: (
                f"change to callback: {lat['notified']}/{lat['changes']} notified, "
                f"p50 {lat['p50_seconds']} s, p99 {lat['p99_seconds']} s, "
                f"max {lat['max_seconds']} s"
            ),
        )


def show_webhooks(result: dict[str, Any], failures: Failures) -> None:
    if "intake" in result:
        i = result["intake"]
        failures.report(
            "intake",
            lambda: (
                f"vendor-webhook intake (median of {len(i['rounds'])}): {i['callbacks']} "
                f"callbacks from {i['clients']} clients, {i['acknowledged_per_second']}/s "
                f"acknowledged, {i['events_per_second']} events/s POST to receiver; CPU ms "
                f"per callback: serve {i['serve_cpu_ms_per_callback']}, PostgreSQL "
                f"{i['postgres_cpu_ms_per_callback']}, worker {i['worker_cpu_ms_per_callback']}"
            ),
        )
    if "webhook_latency" in result:
        w = result["webhook_latency"]
        failures.report(
            "webhook latency",
            lambda: (
                f"webhook mode at {w['rate_per_second']}/s (median of {len(w['rounds'])}): "
                f"POST to callback p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms"
            ),
        )


def main(args: argparse.Namespace) -> int:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    measured, failures = asyncio.run(run(args))
    result: dict[str, Any] = {
        "benchmark": "events",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": when,
        "instances": args.instances,
        **{phase: failures.figures(phase, figures) for phase, figures in measured.items()},
    }
    show(result, failures)
    show_webhooks(result, failures)
    result["summary"] = summary(result, failures)
    print(json.dumps(result["summary"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")
    return failures.exit_code()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--watch", type=float, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delivery-rounds", type=int, default=3)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--webhook-seconds", type=float, default=20)
    parser.add_argument("--webhook-rate", type=float, default=10)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument(
        "--tick-seconds",
        type=int,
        default=1,
        help="HUBGATE_EVENTS_TICK_SECONDS of the workers (60, production's, for 10,000 instances)",
    )
    parser.add_argument(
        "--interval-minutes",
        type=int,
        default=1,
        help="event.poller.refresh_interval of the instances (15 for the 10,000-instance run)",
    )
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=list(PHASES),
        help="which of " + ",".join(PHASES) + " to run",
    )
    parser.add_argument(
        "--deliver-within",
        type=float,
        default=600,
        help="seconds after which a missing notification or an unfinished round is a failure",
    )
    parser.add_argument(
        "--receiver-fails",
        type=int,
        default=0,
        help="the receiver answers 500 to this many notifications first",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "events.json")
    sys.exit(main(parser.parse_args()))
