"""Formulas: executions per second, engine overhead per step, event to first step latency.

An embedded PostgreSQL in a temporary data dir, the Twilio simulator as its own process and one
``hubgate worker`` process. The CPU time of each part an execution costs is read from /proc:
the worker, its sandbox processes, PostgreSQL (and of it the backend that answers this
process's progress polls) and the simulator. The tenant, its Twilio instance (credential check
included) and the formulas are made in this process.

1. Throughput: executions of a 3-step formula (manual trigger -> script -> elementRequest
   ``POST /hubs/messaging/messages`` through the Twilio instance to the simulator) committed
   with their first jobs while no worker runs; then one worker is started and timed until
   every one has ended. Figures are the medians of the rounds.
2. Overhead: the same formula, one execution at a time. The engine's time for a step is the
   hand-over from one step to the next: from the end of the script step's own work (its step
   row's ``finished``) to the start of the elementRequest step's (its ``started``): the
   commit of the first result (one job runs both steps, D450). Steps' own work (the sandbox,
   the vendor call) is not in it.
3. Latency: a formula whose event trigger names the Twilio instance (one script step); one
   vendor change at a time is recorded in this process as a vendor webhook's is (D332: the
   event and its execution commit together); from just before the recording to the start of
   the execution's first step, p50 and p99.

Each execution must end ``success``, and each message must reach the simulator once (one
message per execution, distinct idempotency keys); anything else is a failure of its phase
(bench/failures.py): that phase prints and saves no figure and the command exits 1.

    .venv/bin/python bench/formulas.py [--executions 2000] [--rounds 3] [--sequential 200]
        [--events 200] [--phases throughput,overhead,latency] [--within 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from hubgate.db.engine import unit_of_work
from hubgate.events import service as events
from hubgate.events.changes import CREATED, Change, digest
from hubgate.formulas import service
from hubgate.formulas.repository import FormulaRepository
from hubgate.instances.models import Instance
from hubgate.instances.schemas import InstanceCreate
from hubgate.instances.service import provision
from hubgate.jobs.worker import stop_worker
from hubgate.runtime import Runtime, open_runtime

sys.path.insert(0, str(Path(__file__).parent))
import events as events_bench
from events import children_cpu_seconds, cpu_seconds, percentile, postgres_cpu_seconds, until
from failures import Failures

RESULTS = Path(__file__).parent / "results"
PHASES = ("throughput", "overhead", "latency")
TARGETS = {"executions_per_second": 250, "overhead_ms_per_step": 2.0, "event_p50_ms": 100}
# Executions committed per transaction while the queue is filled.
BATCH = 200

THREE_STEPS = {
    "name": "bench: script then a message",
    "configuration": [{"key": "twilio", "name": "Twilio", "type": "elementInstance"}],
    "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["compose"]}],
    "steps": [
        {
            "name": "compose",
            "type": "script",
            "properties": {"body": "done({text: 'execution ' + trigger.args.n});"},
            "onSuccess": ["send"],
        },
        {
            "name": "send",
            "type": "elementRequest",
            "properties": {
                "elementInstanceId": "${config.twilio}",
                "method": "POST",
                "api": "/hubs/messaging/messages",
                "body": '{"To": "+15005550006", "From": "+15005550001", '
                '"Body": "${steps.compose.text}"}',
            },
        },
    ],
}
ON_EVENT = {
    "name": "bench: on each event",
    "configuration": [{"key": "twilio", "name": "Twilio", "type": "elementInstance"}],
    "triggers": [
        {
            "type": "event",
            "properties": {"elementInstanceId": "${config.twilio}"},
            "onSuccess": ["seen"],
        }
    ],
    "steps": [
        {
            "name": "seen",
            "type": "script",
            "properties": {"body": "done({id: trigger.event.objectId});"},
        }
    ],
}


def ms(delta: float) -> float:
    return round(delta * 1000, 2)


class Bench(events_bench.Bench):
    """The events benchmark's set-up (embedded PostgreSQL, the simulator's process, a
    receiver, the tenant) with no instances of its own; this one adds one Twilio instance and
    the two formulas."""

    def __init__(self, data: Path, within: float) -> None:
        super().__init__(data, 0, within)
        self.within = within
        self.connection: psycopg.Connection[tuple[Any, ...]] | None = None

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        # One connection for the whole run: a connection per poll of the progress would fork
        # a PostgreSQL backend each time, CPU that the figures would charge to the engine.
        if self.connection is None:
            self.connection = psycopg.connect(self.url, autocommit=True)
        cursor = self.connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    async def setup(self, http: aiohttp.ClientSession, runtime: Runtime) -> None:
        await super().setup(http, runtime)
        # The events benchmark's set-up starts the simulator first.
        self.simulator = self.processes[0]
        account = await self.sim(http, "accounts", {})
        self.account = str(account["accountSid"])
        self.messages_url = f"http://127.0.0.1:{self.sim_port}/_sim/messages"
        self.messages_url += f"?accountSid={self.account}"
        body = InstanceCreate(
            name="bench",
            element={"key": "twiliov2"},  # type: ignore[arg-type]
            configuration={
                "username": account["accountSid"],
                "password": account["authToken"],
                "base.url": f"http://127.0.0.1:{self.sim_port}/2010-04-01/Accounts",
                "event.notification.enabled": True,
                "event.notification.callback.url": self.receiver.url,
            },
        )
        async with unit_of_work(runtime.sessions) as session:
            instance, _ = await provision(session, runtime, self.tenant, body)
            self.instance_id = instance.id
            ids = []
            for template in (THREE_STEPS, ON_EVENT):
                formula = await service.create_formula(
                    session, self.tenant, json.loads(json.dumps(template)), runtime.settings
                )
                made = await service.create_instance(
                    session,
                    self.tenant,
                    formula,
                    {"name": template["name"], "configuration": {"twilio": str(instance.id)}},
                    runtime.settings,
                )
                ids.append(made.id)
            # The event formula listens only in the latency phase.
            made.active = False
        self.three_steps, self.on_event = ids

    async def queue(self, runtime: Runtime, count: int, first: int) -> None:
        """``count`` executions of the 3-step formula, committed with their first jobs."""
        for offset in range(0, count, BATCH):
            async with unit_of_work(runtime.sessions) as session:
                repo = FormulaRepository(session)
                instance = await repo.instance_by_id(self.three_steps)
                assert instance is not None
                formula = await repo.formula_by_id(instance.formula_id)
                assert formula is not None
                for n in range(first + offset, first + min(offset + BATCH, count)):
                    await service.start_execution(
                        session,
                        runtime.jobs.app,
                        runtime.settings,
                        instance,
                        formula,
                        service.manual_trigger({"n": n}),
                    )

    async def fail_vendor(self, http: aiohttp.ClientSession, count: int) -> None:
        """The simulator answers the next ``count`` API requests with a Twilio 400, so the
        elementRequest steps fail: what tests/bench uses to show a failed phase has no figure."""
        await self.sim(http, "fail", {"status": 400, "count": count, "retryAfter": None})

    def cpu_split(self, worker: int) -> dict[str, float]:
        """CPU seconds so far of each part an execution costs: the worker, its sandbox
        processes (the script step), PostgreSQL (all its processes), the simulator (the vendor
        call's other end), and of PostgreSQL's the backend that answers this benchmark's own
        progress polls, which is not the engine's."""
        if self.connection is None:
            self.rows("SELECT 1")
        assert self.connection is not None
        return {
            "worker": cpu_seconds(worker),
            "sandbox": children_cpu_seconds(worker),
            "postgres": postgres_cpu_seconds(self.data),
            "simulator": cpu_seconds(self.simulator.pid),
            "progress_polls_postgres": cpu_seconds(self.connection.info.backend_pid),
        }

    def ended(self, instance_id: int, after: int, upto: int | None = None) -> int:
        # Bounded by the round's ids when they are known: a count over the formula
        # instance's every earlier execution grew round after round with the bloated heap,
        # PostgreSQL CPU the benchmark charged to the engine (D523).
        rows = self.rows(
            "SELECT count(*) FROM formula_executions WHERE formula_instance_id = %s"
            " AND id > %s AND id <= coalesce(%s, id)"
            " AND status IN ('success', 'failed', 'retry', 'cancelled')",
            instance_id,
            after,
            upto,
        )
        return int(rows[0][0])

    def last_execution(self) -> int:
        return int(self.rows("SELECT coalesce(max(id), 0) FROM formula_executions")[0][0])

    def check(self, target: str, instance_id: int, after: int, count: int) -> None:
        """Every execution since ``after`` succeeded; one message each reached the simulator."""
        statuses = dict(
            self.rows(
                "SELECT status, count(*) FROM formula_executions"
                " WHERE formula_instance_id = %s AND id > %s GROUP BY status",
                instance_id,
                after,
            )
        )
        for status, n in statuses.items():
            if status != "success":
                self.failures.note(target, f"execution {status}", int(n))
        self.failures.note(target, "execution missing", count - sum(statuses.values()))

    async def check_messages(self, http: aiohttp.ClientSession, target: str, total: int) -> None:
        async with http.get(self.messages_url) as answer:
            messages = (await answer.json())["messages"]
        bodies = [m["body"] for m in messages]
        self.failures.note(target, "message sent twice", len(bodies) - len(set(bodies)))
        self.failures.note(target, "message missing", total - len(set(bodies)))

    async def throughput(
        self, http: aiohttp.ClientSession, runtime: Runtime, count: int, rounds: int
    ) -> dict[str, Any]:
        done = []
        for number in range(rounds):
            after = self.last_execution()
            await self.queue(runtime, count, number * count)
            last = self.last_execution()
            worker = self.start("worker", HUBGATE_WORKER_FETCH_SECONDS="0.1")
            # The clock starts when the worker takes its first job, not at its start-up.
            await until(lambda a=after: self.rows(_STARTED, a)[0][0] > 0, 0.01, self.within)
            started = time.monotonic()
            before = self.cpu_split(worker.pid)
            finished = await until(
                lambda a=after, z=last: self.ended(self.three_steps, a, z) >= count,
                0.02,
                self.within,
            )
            elapsed = time.monotonic() - started
            split = {k: v - before[k] for k, v in self.cpu_split(worker.pid).items()}
            stop_worker(worker)
            at_once = self.rows(_AT_ONCE, self.three_steps, after)[0][0]
            if not finished:
                self.failures.note("throughput", f"round {number} unfinished")
            self.check("throughput", self.three_steps, after, count)
            await self.check_messages(http, "throughput", count * (number + 1))
            if not self.failures.clean("throughput"):
                break
            done.append(
                {
                    "executions": count,
                    "seconds": round(elapsed, 2),
                    "executions_per_second": round(count / elapsed, 1),
                    **{
                        f"{part}_cpu_ms_per_execution": round(seconds / count * 1000, 3)
                        for part, seconds in split.items()
                    },
                    "executions_in_steps_at_once": round(float(at_once or 0), 2),
                }
            )
        return {
            "rounds": done,
            **{
                key: statistics.median(r[key] for r in done)
                for key in (done[0] if done else {})
                if key != "executions"
            },
        }

    async def overhead(
        self, http: aiohttp.ClientSession, runtime: Runtime, count: int, first: int
    ) -> dict[str, Any]:
        after = self.last_execution()
        worker = self.start("worker", HUBGATE_WORKER_FETCH_SECONDS="0.1")
        handovers: list[float] = []
        own: list[float] = []
        try:
            for n in range(count):
                await self.queue(runtime, 1, first + n)
                if not await until(
                    lambda k=n: self.ended(self.three_steps, after) > k, 0.002, self.within
                ):
                    self.failures.note("overhead", "execution unfinished")
                    break
        finally:
            stop_worker(worker)
        self.check("overhead", self.three_steps, after, count)
        await self.check_messages(http, "overhead", first + count)
        rows = self.rows(_STEP_TIMES, self.three_steps, after)
        by_execution: dict[int, dict[str, tuple[datetime, datetime]]] = {}
        for execution_id, name, started, finished in rows:
            by_execution.setdefault(execution_id, {})[name] = (started, finished)
        for steps in by_execution.values():
            if "compose" in steps and "send" in steps:
                handovers.append((steps["send"][0] - steps["compose"][1]).total_seconds())
                own.extend((f - s).total_seconds() for s, f in steps.values())
        if not handovers:
            self.failures.note("overhead", "no step timings")
            return {}
        return {
            "executions": count,
            "overhead_ms_per_step_p50": ms(statistics.median(handovers)),
            "overhead_ms_per_step_p99": ms(percentile(handovers, 0.99)),
            "step_own_ms_p50": ms(statistics.median(own)),
        }

    async def latency(self, runtime: Runtime, count: int) -> dict[str, Any]:
        self.rows("UPDATE formula_instances SET active = true WHERE id = %s", self.on_event)
        service.REQUEST_LISTENERS.forget()
        after = self.last_execution()
        known = self.rows(_NEWEST_WORKER)[0][0]
        worker = self.start("worker", HUBGATE_WORKER_FETCH_SECONDS="0.1")
        # The worker's start-up is not the engine's latency: a fixed wait was too short on a
        # loaded machine (the first event waited seconds for the worker to come up). Once it
        # has registered, its listener starts; a second more covers that.
        if not await until(lambda: self.rows(_NEWEST_WORKER)[0][0] > known, 0.05, self.within):
            self.failures.note("latency", "worker not started")
        await asyncio.sleep(1)
        sent: dict[str, float] = {}
        try:
            for n in range(count):
                sid = f"SMbench{n:06d}"
                change = Change(
                    "messages", sid, CREATED, {"sid": sid, "status": "received"}, digest({"n": n})
                )
                sent[sid] = time.time()
                async with unit_of_work(runtime.sessions) as session:
                    instance = await session.get(Instance, self.instance_id)
                    assert instance is not None
                    await events.record_vendor_changes(
                        session, runtime, instance, [change], datetime.now(UTC)
                    )
                if not await until(
                    lambda k=n: self.ended(self.on_event, after) > k, 0.002, self.within
                ):
                    self.failures.note("latency", "execution unfinished")
                    break
        finally:
            stop_worker(worker)
        self.check("latency", self.on_event, after, count)
        rows = self.rows(_FIRST_STEPS, self.on_event, after)
        latencies = [(started.timestamp() - sent[oid]) * 1000 for oid, started in rows]
        self.failures.note("latency", "execution missing", len(sent) - len(latencies))
        if not latencies:
            return {}
        return {
            "events": count,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
        }

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        super().close()


_STARTED = "SELECT count(*) FROM formula_step_executions s JOIN formula_executions e"
_STARTED += " ON e.id = s.execution_id WHERE e.id > %s AND s.position = 1"
_STEP_TIMES = """
    SELECT s.execution_id, s.step_name, s.started_at, s.finished_at
    FROM formula_step_executions s JOIN formula_executions e ON e.id = s.execution_id
    WHERE e.formula_instance_id = %s AND e.id > %s AND s.position > 0"""
# How many executions the worker had in their steps at once, on average over the round: each
# execution's time from its first step's start to its last step's end, summed, over the time
# from the round's first step to its last. Read after the round, from the step rows, so that
# no sampling runs beside the worker; the fetch and procrastinate's finish of each job are not
# in it (a job runs a little longer than its execution's steps).
_AT_ONCE = """
    WITH spans AS (
        SELECT min(s.started_at) AS began, max(s.finished_at) AS ended
        FROM formula_step_executions s JOIN formula_executions e ON e.id = s.execution_id
        WHERE e.formula_instance_id = %s AND e.id > %s AND s.position > 0
        GROUP BY s.execution_id
    )
    SELECT extract(epoch FROM sum(ended - began))
        / nullif(extract(epoch FROM max(ended) - min(began)), 0)
    FROM spans"""
_NEWEST_WORKER = "SELECT COALESCE(max(id), 0) FROM procrastinate_workers"
_FIRST_STEPS = """
    SELECT e.object_id, s.started_at
    FROM formula_step_executions s JOIN formula_executions e ON e.id = s.execution_id
    WHERE e.formula_instance_id = %s AND e.id > %s AND s.position = 1"""


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], Failures]:
    data = Path(tempfile.mkdtemp(prefix="hubgate-bench-formulas-"))
    bench = Bench(data, args.within)
    runtime = await open_runtime(bench.settings, bench.url)
    measured: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as http:
            await bench.setup(http, runtime)
            if args.vendor_fails:
                await bench.fail_vendor(http, args.vendor_fails)
            sent = 0
            if "throughput" in args.phases:
                measured["throughput"] = await bench.throughput(
                    http, runtime, args.executions, args.rounds
                )
                sent = args.executions * len(measured["throughput"]["rounds"])
                print("throughput done", flush=True)
            if "overhead" in args.phases:
                measured["overhead"] = await bench.overhead(http, runtime, args.sequential, sent)
                print("overhead done", flush=True)
            if "latency" in args.phases:
                measured["latency"] = await bench.latency(runtime, args.events)
    finally:
        await runtime.close()
        await bench.receiver.stop()
        bench.close()
    return measured, bench.failures


def show(result: dict[str, Any], failures: Failures) -> None:
    if "throughput" in result:
        t = result["throughput"]
        head = f"{'round':>5} {'executions':>10} {'s':>7} {'exec/s':>8} {'at once':>8}"
        head += f"   CPU ms per execution: {'worker':>7} {'sandbox':>8} {'postgres':>9} "
        head += f"{'(polls)':>8} {'simulator':>10}"
        failures.report("throughput", lambda: head)
        for number, row in enumerate(t.get("rounds", [])):
            print(
                f"{number + 1:>5} {row['executions']:>10} {row['seconds']:>7} "
                f"{row['executions_per_second']:>8} {row['executions_in_steps_at_once']:>8} "
                f"{'':>22} "
                f"{row['worker_cpu_ms_per_execution']:>7} {row['sandbox_cpu_ms_per_execution']:>8} "
                f"{row['postgres_cpu_ms_per_execution']:>9} "
                f"{row['progress_polls_postgres_cpu_ms_per_execution']:>8} "
                f"{row['simulator_cpu_ms_per_execution']:>10}"
            )
        failures.report(
            "throughput",
            lambda: (
                f"median: {t['executions_per_second']} executions/s "
                f"(target >= {TARGETS['executions_per_second']}); CPU ms per execution: "
                f"worker {t['worker_cpu_ms_per_execution']}, "
                f"sandbox {t['sandbox_cpu_ms_per_execution']}, "
                f"PostgreSQL {t['postgres_cpu_ms_per_execution']} (of it the benchmark's "
                f"progress polls {t['progress_polls_postgres_cpu_ms_per_execution']}), "
                f"simulator {t['simulator_cpu_ms_per_execution']}"
            ),
        )
    if "overhead" in result:
        o = result["overhead"]
        failures.report(
            "overhead",
            lambda: (
                f"engine overhead per step ({o['executions']} executions one at a time): "
                f"p50 {o['overhead_ms_per_step_p50']} ms, p99 {o['overhead_ms_per_step_p99']} ms "
                f"(target < {TARGETS['overhead_ms_per_step']} ms); a step's own work p50 "
                f"{o['step_own_ms_p50']} ms"
            ),
        )
    if "latency" in result:
        lat = result["latency"]
        failures.report(
            "latency",
            lambda: (
                f"event to first step ({lat['events']} events): p50 {lat['p50_ms']} ms, "
                f"p99 {lat['p99_ms']} ms (target p50 < {TARGETS['event_p50_ms']} ms)"
            ),
        )


def main(args: argparse.Namespace) -> int:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    measured, failures = asyncio.run(run(args))
    result: dict[str, Any] = {
        "benchmark": "formulas",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": when,
        "targets": TARGETS,
        **{phase: failures.figures(phase, figures) for phase, figures in measured.items()},
    }
    show(result, failures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"saved {args.out}")
    return failures.exit_code()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=list(PHASES),
        help="which of throughput,overhead,latency to run",
    )
    parser.add_argument(
        "--within",
        type=float,
        default=600,
        help="seconds after which an unfinished round or execution is a failure",
    )
    parser.add_argument(
        "--vendor-fails",
        type=int,
        default=0,
        help="the simulator refuses this many API requests first (to see a failed phase)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "formulas.json")
    sys.exit(main(parser.parse_args()))
