"""Figures the reliability tests measure, handed to ``make reliability`` for docs/reliability.md.

When ``HUBGATE_RELIABILITY_RESULTS`` names a folder, each area writes one JSON file there;
``bench/reliability_report.py`` turns the folder into the page. Otherwise nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "HUBGATE_RELIABILITY_RESULTS"


def publish(name: str, payload: dict[str, Any]) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
