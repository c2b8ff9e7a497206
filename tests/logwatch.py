"""Keeps every log line of the test run, and every secret the run made, for tests/secrets.

A pytest plugin (tests/conftest.py loads it). At the start of the run a handler on the root
logger writes every record, Hubgate's at DEBUG, to a file; fixtures that make secrets
(tenants, subprocess logs) register them here; the last test of the run reads it all back.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest

SECRETS: set[str] = set()
LOG_FILES: list[Path] = []
_handler: logging.Handler | None = None


def remember_secret(*values: str) -> None:
    SECRETS.update(v for v in values if v)


def remember_log(path: Path) -> None:
    LOG_FILES.append(path)


def run_log() -> Path:
    return LOG_FILES[0]


def pytest_configure(config: pytest.Config) -> None:
    global _handler
    folder = Path(tempfile.mkdtemp(prefix="hubgate-test-logs-"))
    path = folder / "run.log"
    handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    handler.setLevel(logging.DEBUG)
    # The same shape a production log has, message and traceback included.
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("hubgate").setLevel(logging.DEBUG)
    _handler = handler
    LOG_FILES.insert(0, path)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests marked last read what the whole run logged, so they run after everything else.
    last = [item for item in items if item.get_closest_marker("last")]
    for item in last:
        items.remove(item)
    items.extend(last)
