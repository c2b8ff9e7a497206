"""What fuzzing sent and got back, per operation, mode and status, for docs/reliability.md."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[tuple[str, str, int]] = Counter()
CONSOLE = "console"


def record(label: str, mode: str, status: int) -> None:
    with _lock:
        _counts[(label, mode, status)] += 1


def _figures(counts: dict[tuple[str, str, int], int]) -> dict[str, object]:
    by_status: Counter[int] = Counter()
    for (_, _, status), n in counts.items():
        by_status[status] += n
    return {
        "requests": sum(counts.values()),
        "operations": len({label for label, _, _ in counts}),
        "by_status": {str(s): n for s, n in sorted(by_status.items())},
        # A 502 passes the checks only with the vendor's own provider fields (runner.py): it
        # is the vendor refusing, passed on. Anything else 5xx would have failed a test.
        "vendor_502": by_status[502],
        "server_errors": sum(n for s, n in by_status.items() if s >= 500 and s != 502),
    }


def summary() -> dict[str, object]:
    with _lock:
        counts = dict(_counts)
    api = {k: n for k, n in counts.items() if k[1] != CONSOLE}
    console = {k: n for k, n in counts.items() if k[1] == CONSOLE}
    return {**_figures(api), "console": _figures(console)}
