"""The production topology (issue 14 item 6): two nodes on an operator's PostgreSQL, one killed.

PostgreSQL comes from Debian's ``postgresql`` package (``make reliability`` installs it), set
up as an operator would: ``initdb`` into a folder of its own, its own TCP port on loopback,
``pg_ctl start`` and ``stop``. Two nodes, each a ``hubgate serve --workers 2`` and a
``hubgate worker``, share it and one keyring. Clients provision, call the hub and delete
through both nodes while the workers poll the Twilio simulator and deliver to a callback
receiver; then every process of one node gets SIGKILL. What was acknowledged must still be
true afterwards, the other node must carry the rest, the dead worker's jobs must be run again
by the living one (stalled-job recovery), and ``/readyz`` must have said so all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import psycopg
import pytest

from hubgate.kit.crypto import Keyring
from sims.receiver import CallbackReceiver
from sims.twilio_sim import TwilioSimulator
from tests.conftest import free_port, twilio_instance_body
from tests.events.conftest import FAST
from tests.faults.conftest import API, authorization, create_org, hubgate_env
from tests.logwatch import remember_log, remember_secret
from tests.ops.processes import Process, children, hubgate, start, wait_serving, wait_until
from tests.results import publish

pytestmark = pytest.mark.reliability

CLIENTS = 8
EVENT_INSTANCES = 4
AFTER_KILL_SECONDS = 8.0


def postgres_bin() -> Path:
    """The newest server Debian's ``postgresql`` package installed."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    assert versions, "Debian's postgresql package is missing: `make reliability` installs it"
    return versions[-1].parent


class OperatorsPostgres:
    """A PostgreSQL server run by hand from the distribution's binaries, as the postgres user."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # The server refuses to run as root, and pytest's folders are root's only: the data
        # directory lives in a folder of its own that the postgres user owns.
        self.folder = Path(tempfile.mkdtemp(prefix="hubgate-topology-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.folder, self.user, self.user)

    def run(self, *args: str) -> None:
        subprocess.run(args, user=self.user, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.run(
            str(self.bin / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c max_connections=300"
        )
        self.run(
            str(self.bin / "pg_ctl"),
            "--pgdata",
            str(self.data),
            "--log",
            str(self.folder / "server.log"),
            "--options",
            options,
            "--wait",
            "start",
        )
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE hubgate")

    def url(self, database: str = "hubgate") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(str(self.bin / "pg_ctl"), "--pgdata", str(self.data), "--mode", "fast", "stop")

    def version(self) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None
        return str(row[0])

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[OperatorsPostgres]:
    server = OperatorsPostgres()
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            # The server's log outlives its folder, for the run's secrets scan.
            log = server.folder / "server.log"
            if log.exists():
                shutil.copy(log, tmp_path / "postgresql.log")
                remember_log(tmp_path / "postgresql.log")
            shutil.rmtree(server.folder, ignore_errors=True)


@dataclass
class Node:
    name: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['HUBGATE_PORT']}"

    @property
    def api(self) -> str:
        return self.url + API

    def kill(self) -> int:
        """SIGKILL to every process of the node at once: serve, its API processes, the worker."""
        doomed = [psutil.Process(p.pid) for p in self.processes if p.popen.poll() is None]
        for process in list(doomed):
            doomed += children(process.pid)
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        for process in self.processes:
            process.wait(30)
        return len(doomed)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def node_env(tmp_path: Path, name: str, url: str, keyring: str, **extra: Any) -> dict[str, str]:
    fast = {f"HUBGATE_{key.upper()}": str(value) for key, value in {**FAST, **extra}.items()}
    return hubgate_env(tmp_path / name, url, keyring, **fast)


def worker_ids(postgres: OperatorsPostgres) -> set[int]:
    return {row[0] for row in postgres.sql("SELECT id FROM procrastinate_workers")}


def workers_are(postgres: OperatorsPostgres, count: int) -> bool:
    return len(worker_ids(postgres)) == count


@dataclass
class Load:
    """What the clients saw: every answer by node and phase, and what was acknowledged."""

    killing: asyncio.Event = field(default_factory=asyncio.Event)
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    interrupted: Counter[str] = field(default_factory=Counter)
    created: dict[int, str] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    unsure: set[int] = field(default_factory=set)

    def phase(self) -> str:
        if self.killed.is_set():
            return "after"
        return "during" if self.killing.is_set() else "before"


@dataclass
class Caller:
    """One request to one node, its answer counted by node, phase and status."""

    http: aiohttp.ClientSession
    node: Node
    load: Load

    async def __call__(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
        phase = self.load.phase()
        url = self.node.api + path
        async with self.http.request(method, url, headers=headers, **kw) as answer:
            payload = await answer.json(content_type=None)
            self.load.answers[(self.node.name, phase, answer.status)] += 1
            assert answer.status == 200, (self.node.name, method, path, answer.status, payload)
            return payload


async def client(
    http: aiohttp.ClientSession, nodes: list[Node], first: int, load: Load, auth: str, body: Any
) -> None:
    """Create, call the hub through the new instance, delete every second one; on a refused or
    cut connection, go on with the other node (what a load balancer does for its clients)."""
    current = first
    rounds = 0
    while not load.stop.is_set():
        node = nodes[current]
        call = Caller(http, node, load)
        try:
            instance = await call("POST", "/instances", {"Authorization": auth}, json=body)
            load.created[instance["id"]] = instance["token"]
            remember_secret(instance["token"])
            element = {"Authorization": f"Element {instance['token']}"}
            await call("GET", "/hubs/messaging/accounts", element)
            if rounds % 2:
                # Sent and unanswered, a delete may or may not have happened.
                load.unsure.add(instance["id"])
                await call("DELETE", f"/instances/{instance['id']}", {"Authorization": auth})
                load.unsure.remove(instance["id"])
                load.deleted.add(instance["id"])
        except (aiohttp.ClientConnectionError, TimeoutError):
            load.interrupted[f"{node.name}/{load.phase()}"] += 1
            current = 1 - current
            await asyncio.sleep(0.05)
        rounds += 1


async def probe(
    http: aiohttp.ClientSession, nodes: list[Node], load: Load, seen: Counter[str]
) -> None:
    """Ask each node's /readyz until told to stop; count the answers by node, phase, status."""
    while not load.stop.is_set():
        for node in nodes:
            asked = load.phase()
            try:
                async with http.get(node.url + "/readyz") as answer:
                    status = str(answer.status)
            except (aiohttp.ClientConnectionError, TimeoutError):
                status = "unreachable"
            # A probe the kill overtook could truthfully end either way.
            phase = asked if load.phase() == asked else "during"
            seen[f"{node.name}/{phase}/{status}"] += 1
        await asyncio.sleep(0.2)


async def feed(
    sim: TwilioSimulator,
    accounts: list[str],
    postgres: OperatorsPostgres,
    load: Load,
    sids: list[str],
) -> None:
    """New inbound messages on every polled account, and every poller made due again (the
    interval is a minute at least; the pollers' clock is what this moves, not the work)."""
    while not load.stop.is_set():
        for account in accounts:
            message = sim.add_inbound_message(
                "+15005550006", "+15005550001", f"#{len(sids)}", account_sid=account
            )
            sids.append(message["sid"])
        await asyncio.to_thread(postgres.sql, "UPDATE event_pollers SET next_poll_at = now()")
        await asyncio.sleep(0.5)


async def test_two_nodes_on_an_operators_postgres_survive_the_loss_of_one(
    postgres: OperatorsPostgres, sim: TwilioSimulator, tmp_path: Path
) -> None:
    keyring = Keyring.generate().to_json()
    # The killed node's worker holds each poll open a second before committing it, so that
    # the kill surely finds jobs of it running: those are what stalled-job recovery must save.
    env_a = node_env(tmp_path, "a", postgres.url(), keyring, events_poll_commit_pause=1.0)
    env_b = node_env(tmp_path, "b", postgres.url(), keyring)
    await asyncio.to_thread(
        subprocess.run,
        hubgate("db", "upgrade"),
        env=env_b,
        check=True,
        capture_output=True,
        timeout=120,
    )
    org = await asyncio.to_thread(create_org, env_b, "topology")
    remember_secret(org["user"]["secret"], org["organization"]["secret"])
    auth = authorization(org)
    a, b = Node("a", env_a), Node("b", env_b)
    receiver = CallbackReceiver()
    await receiver.start()
    load = Load()
    ready: Counter[str] = Counter()
    sids: list[str] = []
    try:
        for node in (a, b):
            (tmp_path / node.name).mkdir()
            node.processes.append(
                start(hubgate("worker"), node.env, tmp_path / f"{node.name}-worker.log")
            )
            # Which worker row is whose: a's worker is the first to appear.
            expected = 1 if node is a else 2
            wait_until(partial(workers_are, postgres, expected), f"{node.name}'s worker up")
            if node is a:
                (worker_a,) = worker_ids(postgres)
            serve = start(
                hubgate("serve", "--workers", "2"), node.env, tmp_path / f"{node.name}-serve.log"
            )
            node.processes.append(serve)
            wait_serving(serve, node.url + "/readyz")
        nodes = [a, b]
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for node in nodes:
                async with http.get(node.url + "/readyz") as answer:
                    assert answer.status == 200, await answer.text()
            accounts = []
            for n in range(EVENT_INSTANCES):
                sid, token = sim.add_account()
                accounts.append(sid)
                body = twilio_instance_body(
                    sim,
                    username=sid,
                    password=token,
                    **{
                        "event.notification.enabled": True,
                        "event.notification.callback.url": receiver.url,
                        "event.poller.refresh_interval": 1,
                    },
                )
                async with http.post(
                    nodes[n % 2].api + "/instances", json=body, headers={"Authorization": auth}
                ) as answer:
                    assert answer.status == 200, await answer.text()
                    remember_secret((await answer.json())["token"])
            # The first poll of each instance only notes what exists (D-events): wait for it.
            postgres.sql("UPDATE event_pollers SET next_poll_at = now()")

            def primed() -> bool:
                rows = postgres.sql("SELECT count(*) FROM event_pollers WHERE primed")
                return rows == [(EVENT_INSTANCES,)]

            await asyncio.to_thread(wait_until, primed, "every poller primed", 90)

            plain = twilio_instance_body(sim)
            tasks = [
                asyncio.create_task(client(http, nodes, n % 2, load, auth, plain))
                for n in range(CLIENTS)
            ]
            tasks.append(asyncio.create_task(probe(http, nodes, load, ready)))
            tasks.append(asyncio.create_task(feed(sim, accounts, postgres, load, sids)))
            # Kill once the load is under way and node a's worker has a job running.
            started = time.monotonic()
            while sum(load.answers.values()) < 60 or not postgres.sql(
                "SELECT 1 FROM procrastinate_jobs WHERE worker_id = %s AND status = 'doing'",
                worker_a,
            ):
                assert time.monotonic() - started < 90, (load.answers, "no running job of a")
                await asyncio.sleep(0.05)
            load.killing.set()
            killed_processes = await asyncio.to_thread(a.kill)
            load.killed.set()
            in_flight = postgres.sql(
                "SELECT id, args->>'event_id' FROM procrastinate_jobs"
                " WHERE worker_id = %s AND status = 'doing'",
                worker_a,
            )
            await asyncio.sleep(AFTER_KILL_SECONDS)
            load.stop.set()
            await asyncio.gather(*tasks)
            added = len(sids)

            # The living worker rescues the dead one's jobs and delivers every event.
            def settled() -> bool:
                left = postgres.sql(
                    "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s)"
                    " AND status NOT IN ('succeeded', 'failed')",
                    [row[0] for row in in_flight],
                )
                pending = postgres.sql("SELECT count(*) FROM events WHERE status <> 'NOTIFIED'")
                return left == [(0,)] and pending == [(0,)]

            await asyncio.to_thread(wait_until, settled, "jobs rescued and events delivered", 120)

            # Every acknowledged write holds, read back through the surviving node.
            present = gone = 0
            unsure: Counter[int] = Counter()
            for instance_id, token in load.created.items():
                async with http.get(
                    f"{b.api}/instances/{instance_id}", headers={"Authorization": auth}
                ) as answer:
                    if instance_id in load.unsure:
                        unsure[answer.status] += 1
                        continue
                    if instance_id in load.deleted:
                        assert answer.status == 404, instance_id
                        gone += 1
                        continue
                    assert answer.status == 200, await answer.text()
                async with http.get(
                    f"{b.api}/hubs/messaging/accounts",
                    headers={"Authorization": f"Element {token}"},
                ) as hub:
                    assert hub.status == 200, await hub.text()
                present += 1
    finally:
        load.stop.set()
        for node in (a, b):
            node.stop()
        await receiver.stop()

    assert set(unsure) <= {200, 404}, unsure
    # Every message the feed added reached the receiver, in exactly one delivered event.
    delivered: Counter[str] = Counter()
    webhooks = Counter(r.webhook_id for r in receiver.requests if r.status == 200)
    firsts: dict[str, Any] = {}
    for request in receiver.requests:
        if request.status == 200:
            firsts.setdefault(request.webhook_id, request.json())
    for message in firsts.values():
        for event in message["message"]["events"]:
            delivered[event["objectId"]] += 1
    notified = {
        str(row[0]) for row in postgres.sql("SELECT id FROM events WHERE status = 'NOTIFIED'")
    }
    assert set(webhooks) == notified
    assert set(sids) <= set(delivered), set(sids) - set(delivered)
    assert max(delivered.values()) == 1
    # A webhook id comes twice only for a delivery the kill cut between sending and recording
    # (D136): the dead worker's running delivery jobs are the only ones allowed a second copy.
    repeated = {webhook for webhook, count in webhooks.items() if count > 1}
    cut_deliveries = {row[1] for row in in_flight if row[1] is not None}
    assert repeated <= cut_deliveries, (repeated, cut_deliveries)
    assert max(webhooks.values()) <= 2, webhooks.most_common(3)
    duplicates = sum(count - 1 for count in webhooks.values())

    # Procrastinate deletes a job that succeeded, and the rescue ends (and deletes) one whose
    # poll or delivery was queued again meanwhile: none may be left queued or running, and the
    # surviving worker must have rescued each one (its log names the job).
    left = postgres.sql(
        "SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)",
        [row[0] for row in in_flight],
    )
    assert all(status in ("succeeded", "failed") for _, status in left), left
    rescued = {int(n) for n in re.findall(r"rescuing stalled job (\d+)", b.processes[0].output())}
    assert in_flight
    assert {row[0] for row in in_flight} <= rescued, (in_flight, rescued)

    def answered(node: str, phase: str) -> int:
        return sum(
            n for (name, when, _), n in load.answers.items() if (name, when) == (node, phase)
        )

    after_a, after_b = answered("a", "after"), answered("b", "after")
    assert after_a == 0
    assert after_b > 0
    assert not [key for key in load.interrupted if key.startswith("b/")], load.interrupted
    truthful = {"a/before/200", "b/before/200", "a/after/unreachable", "b/after/200"}
    assert {key for key in ready if "/during/" not in key} == truthful, ready
    # The surviving node was ready at every single probe, the kill's moment included.
    assert all(key.endswith("/200") for key in ready if key.startswith("b/")), ready
    publish(
        "topology",
        {
            "postgresql_version": postgres.version(),
            "processes_killed": killed_processes,
            "clients": CLIENTS,
            "answers_before_kill_node_a": answered("a", "before"),
            "answers_before_kill_node_b": answered("b", "before"),
            "answers_during_kill_node_b": answered("b", "during"),
            "answers_after_kill_node_a": after_a,
            "answers_after_kill_node_b": after_b,
            "requests_to_the_killed_node_unanswered": sum(
                n for key, n in load.interrupted.items() if key.startswith("a/")
            ),
            "creates_acknowledged": len(load.created),
            "creates_checked_present": present,
            "deletes_acknowledged": len(load.deleted),
            "deletes_checked_gone": gone,
            "deletes_cut_by_the_kill_done": unsure[404],
            "deletes_cut_by_the_kill_not_done": unsure[200],
            "messages_added": added,
            "messages_delivered_once": sum(1 for sid in sids if delivered[sid] == 1),
            "events_notified": len(notified),
            "duplicate_deliveries": duplicates,
            "duplicates_outside_cut_deliveries": len(repeated - cut_deliveries),
            "killed_worker_deliveries_running": len(cut_deliveries),
            "killed_worker_jobs_running": len(in_flight),
            "killed_worker_jobs_rescued_by_the_other": len(rescued & {row[0] for row in in_flight}),
            "readyz_answers": dict(ready),
        },
    )
