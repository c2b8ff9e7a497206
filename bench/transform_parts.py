"""The parts of a common resource hub call, in process: what bench/transform.py's changes bought.

(1) a script over a request's 10 records: one ``ScriptSession.call`` per record against one
``call_many`` for all (D324), the calls alone, each round in fresh sessions; a session's
opening and closing; and the whole job sent to a sandbox worker process and answered (D390,
one job at a time: the round trip's wall time, the worker's work included, and the CPU time
of each side per job: this process's, the records' mapping included, and the worker's);
(2) mapping the 10 records with 6 key-to-key fields: the general walk against the key-to-key
plan. Medians of ``--rounds`` rounds of ``--calls`` calls each.

    .venv/bin/python bench/transform_parts.py [--rounds 5] [--calls 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from hubgate.hub.normalize import drop_nulls
from hubgate.kit.sandbox import MIB, Limits, SandboxPool, ScriptSession
from hubgate.transformations import mapping
from proxy.run import ROOT, canned_page
from transform import MAPPING, REMOVE_UNMAPPED, SCRIPT

LIMITS = Limits(seconds=2.0, memory_bytes=32 * MIB)


def _no_plan(rules: object) -> None:
    return None


def pool_worker_pid(pool: SandboxPool) -> int:
    """The one worker process of a pool of one, started by a first job."""
    (found,) = [
        child.pid
        for child in psutil.Process().children()
        if "hubgate.kit.sandbox.worker" in " ".join(child.cmdline())
    ]
    return found


def per_call_ms(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "transform-parts.json"
    )
    args = parser.parse_args()
    transformation = mapping.parse_transformation(
        {"vendorName": "messages", "fields": MAPPING, "configuration": REMOVE_UNMAPPED}
    )
    records = [drop_nulls(r) for r in canned_page(10)["messages"]]
    mapped = [mapping.from_vendor(transformation, r) for r in records]
    inputs = [
        {"originalObject": o, "transformedObject": m, "fromVendor": True}
        for o, m in zip(records, mapped, strict=True)
    ]

    def session() -> ScriptSession:
        return ScriptSession(SCRIPT, mapping.SCRIPT_PARAMS, LIMITS)

    def calls_ms(batched: bool) -> float:
        """The 10 calls alone, each run in a fresh session as a request does."""
        spent = 0.0
        for _ in range(args.calls):
            with session() as s:
                started = time.perf_counter()
                if batched:
                    s.call_many(inputs)
                else:
                    for item in inputs:
                        s.call(item)
                spent += time.perf_counter() - started
        return spent / args.calls * 1000

    def open_close() -> None:
        with session():
            pass

    pool = SandboxPool(1)
    loop = asyncio.new_event_loop()

    def pool_job() -> None:
        loop.run_until_complete(pool.run_many(SCRIPT, mapping.SCRIPT_PARAMS, inputs, LIMITS))

    pool_job()  # the worker process starts here, not in the first measured round
    worker = psutil.Process(pool_worker_pid(pool))

    def pool_cpu_ms() -> tuple[float, float]:
        """A common resource's records mapped and scripted in the worker: CPU ms per job of
        this process and of the worker."""
        own, theirs = time.process_time(), worker.cpu_times()
        for _ in range(args.calls):
            mapped = [mapping.from_vendor(transformation, record) for record in records]
            calls = [
                {"originalObject": o, "transformedObject": m, "fromVendor": True}
                for o, m in zip(records, mapped, strict=True)
            ]
            loop.run_until_complete(pool.run_many(SCRIPT, mapping.SCRIPT_PARAMS, calls, LIMITS))
        after = worker.cpu_times()
        worker_s = after.user + after.system - theirs.user - theirs.system
        return (
            (time.process_time() - own) / args.calls * 1000,
            worker_s / args.calls * 1000,
        )

    def mapped_records() -> None:
        for record in records:
            mapping.from_vendor(transformation, record)

    parts = {
        "script_session_open_close_ms": open_close,
        "script_10_records_pool_round_trip_ms": pool_job,
        "map_10_records_general_walk_ms": mapped_records,
        "map_10_records_key_to_key_ms": mapped_records,
    }
    rounds: dict[str, list[float]] = {name: [] for name in parts}
    rounds["script_10_calls_one_by_one_ms"] = []
    rounds["script_10_calls_batched_ms"] = []
    rounds["script_10_records_pool_hubgate_cpu_ms"] = []
    rounds["script_10_records_pool_worker_cpu_ms"] = []
    for _ in range(args.rounds):
        hubgate_cpu, worker_cpu = pool_cpu_ms()
        rounds["script_10_records_pool_hubgate_cpu_ms"].append(hubgate_cpu)
        rounds["script_10_records_pool_worker_cpu_ms"].append(worker_cpu)
        rounds["script_10_calls_one_by_one_ms"].append(calls_ms(batched=False))
        rounds["script_10_calls_batched_ms"].append(calls_ms(batched=True))
        for name, work in parts.items():
            if name == "map_10_records_general_walk_ms":
                # The same mapping with its key-to-key plan turned off: the general walk.
                with mock.patch.object(mapping, "_key_to_key", new=_no_plan):
                    rounds[name].append(per_call_ms(work, args.calls))
            else:
                rounds[name].append(per_call_ms(work, args.calls))
    pool.close()
    loop.close()
    figures = {name: round(statistics.median(values), 4) for name, values in rounds.items()}
    for name, value in figures.items():
        print(f"{name:<34} {value:>9.4f}")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
                "rounds": args.rounds,
                "calls": args.calls,
                "load_average": [round(x, 2) for x in load],
                "figures": figures,
                "per_round": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
