"""What fuzzing sent and got back, per operation, mode and status, for docs/reliability.md."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[tuple[str, str, int]] = Counter()


def record(label: str, mode: str, status: int) -> None:
    with _lock:
        _counts[(label, mode, status)] += 1


def summary() -> dict[str, object]:
    with _lock:
        counts = dict(_counts)
    by_status: Counter[int] = Counter()
    for (_, _, status), n in counts.items():
        by_status[status] += n
    return {
        "requests": sum(counts.values()),
        "operations": len({label for label, _, _ in counts}),
        "by_status": {str(s): n for s, n in sorted(by_status.items())},
        "server_errors": sum(n for s, n in by_status.items() if s >= 500),
    }
