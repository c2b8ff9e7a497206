"""Figures the reliability tests measure, handed to ``make reliability`` for docs/reliability.md.

When ``HUBGATE_RELIABILITY_RESULTS`` names a folder, each area writes one JSON file there;
``bench/reliability_report.py`` turns the folder into the page. Otherwise nothing is written.
``run.json`` describes the run itself (commit, times, whether ../shared was there): every
number the page shows comes from one of these files or from pytest's JUnit XML.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

ENV = "HUBGATE_RELIABILITY_RESULTS"
ROOT = Path(__file__).resolve().parents[1]


def publish(name: str, payload: dict[str, Any]) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def start_run(markers: str, shared: Path) -> None:
    """What the page says about the run itself: which commit, when, which tests, ../shared."""
    publish(
        "run",
        {
            "commit": _git("rev-parse", "HEAD") or "unknown",
            "uncommitted_changes": len(_git("status", "--porcelain").splitlines()),
            "started": _now(),
            "markers": markers,
            "shared_dir": str(shared),
            "shared_present": shared.is_dir(),
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
        },
    )


def finish_run(exit_status: int) -> None:
    folder = os.environ.get(ENV)
    if not folder or not (Path(folder) / "run.json").exists():
        return
    run = json.loads((Path(folder) / "run.json").read_text())
    run.update(finished=_now(), exit_status=exit_status, load_average_at_end=os.getloadavg())
    publish("run", run)
