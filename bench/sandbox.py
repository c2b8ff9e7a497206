"""What a script costs: the sandbox's per-call overhead, and the mapping engine beside it.

Runs in-process (no server, no database), prints one table and writes bench/results/sandbox.json
with the machine's load average before and after, since the machine is shared.

    .venv/bin/python bench/sandbox.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hubgate.kit.sandbox import MIB, Limits, ScriptResult, run, run_async, run_many
from hubgate.transformations.mapping import from_vendor, parse_transformation, script_step

RESULTS = Path(__file__).parent / "results"
LIMITS = Limits(seconds=30.0, memory_bytes=64 * MIB)
PARAMS = ("originalObject", "transformedObject", "fromVendor")
MESSAGE = {
    "sid": "SM0123456789abcdef0123456789abcdef",
    "to": "+15558675310",
    "from": "+15017122661",
    "body": "Hello from the benchmark",
    "status": "delivered",
    "date_sent": "Thu, 05 Mar 2026 07:08:09 +0000",
    "num_segments": "1",
    "price": "-0.00750",
    "uri": "/2010-04-01/Accounts/AC1/Messages/SM0123.json",
}
SIX_FIELDS = {
    "vendorName": "messages",
    "fields": [
        {"path": "id", "vendorPath": "sid"},
        {"path": "to", "vendorPath": "to"},
        {"path": "from", "vendorPath": "from"},
        {"path": "text", "vendorPath": "body"},
        {"path": "status", "vendorPath": "status"},
        {
            "path": "sentAt",
            "vendorPath": "date_sent",
            "configuration": [
                {"type": "transformDate", "properties": {"pattern": "yyyy-MM-dd'T'HH:mm:ssXXX"}}
            ],
        },
    ],
    "configuration": [
        {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}
    ],
}
ADD_FIELD = "transformedObject.foo = 'bar'; done(transformedObject);"


def timed(function: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds per call, one sample per call."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def row(name: str, samples: list[float], per: int = 1, note: str = "") -> dict[str, Any]:
    samples = sorted(s / per for s in samples)
    return {
        "case": name,
        "samples": len(samples),
        "p50_us": round(statistics.median(samples) * 1e6, 1),
        "p90_us": round(samples[int(len(samples) * 0.9) - 1] * 1e6, 1),
        "note": note,
    }


def ok(outcome: object) -> None:
    if not isinstance(outcome, ScriptResult):
        raise SystemExit(f"benchmark script failed: {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    repeat = args.repeat
    load_before = os.getloadavg()
    transformation = parse_transformation(SIX_FIELDS)
    scripted = parse_transformation({**SIX_FIELDS, "script": {"body": ADD_FIELD}})
    mapped = from_vendor(transformation, MESSAGE)
    page = [MESSAGE] * 200
    ok(run("done(1)", (), {}, LIMITS))  # builds the country tables once, as a server would

    rows = [
        row("fresh context, `done(1)`", timed(lambda: ok(run("done(1)", (), {}, LIMITS)), repeat)),
        row(
            "fresh context, churros add-a-field script",
            timed(
                lambda: ok(run(ADD_FIELD, PARAMS, {"transformedObject": mapped}, LIMITS)), repeat
            ),
        ),
        row(
            "same context, per record (200 records)",
            timed(
                lambda: [
                    ok(o)
                    for o in run_many(
                        ADD_FIELD, PARAMS, [{"transformedObject": mapped}] * 200, LIMITS
                    )
                ],
                max(5, repeat // 20),
            ),
            per=200,
            note="context and compile paid once per 200",
        ),
        row(
            "fresh context, CE.hmacSha256Hex",
            timed(
                lambda: ok(run("done(CE.hmacSha256Hex('key', 'message'))", (), {}, LIMITS)), repeat
            ),
        ),
        row(
            "fresh context, require('lodash')",
            timed(
                lambda: ok(run("done(require('lodash').VERSION)", (), {}, LIMITS)),
                max(10, repeat // 4),
            ),
        ),
        row(
            "fresh context, require('moment')",
            timed(
                lambda: ok(run("done(require('moment').version)", (), {}, LIMITS)),
                max(10, repeat // 4),
            ),
        ),
        row(
            "run_async (thread pool hop), `done(1)`",
            timed(lambda: ok(asyncio.run(run_async("done(1)", (), {}, LIMITS))), repeat),
            note="includes asyncio.run's own loop start",
        ),
        row(
            "map 6 fields, per record (Python)",
            timed(lambda: [from_vendor(transformation, m) for m in page], max(5, repeat // 10)),
            per=200,
        ),
        row(
            "map 6 fields + script, per record (200 records)",
            timed(
                lambda: script_step(
                    scripted,
                    page,
                    [from_vendor(scripted, m) for m in page],
                    from_vendor=True,
                    limits=LIMITS,
                ),
                max(5, repeat // 20),
            ),
            per=200,
        ),
    ]
    load_after = os.getloadavg()
    width = max(len(r["case"]) for r in rows)
    print(f"{'case'.ljust(width)}  {'p50 µs':>10}  {'p90 µs':>10}  note")
    for r in rows:
        print(f"{r['case'].ljust(width)}  {r['p50_us']:>10}  {r['p90_us']:>10}  {r['note']}")
    print(f"load average before {load_before}, after {load_after}; {os.cpu_count()} cores")
    result = {
        "benchmark": "sandbox",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "quickjs_ng": version("quickjs-ng"),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "sandbox.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
