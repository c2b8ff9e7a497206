"""Where serve's processes put their metric samples, so that /metrics can add them up.

Kept apart from the metrics module: the folder must be in the environment before
prometheus-client is imported, which decides at import how its values are stored.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(data_dir: Path) -> None:
    """An empty ``data_dir/metrics`` for this run: an earlier run's files would add its
    counts to this one's. Every process serve starts inherits the variable."""
    folder = (data_dir / "metrics").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
