"""Object changes: what a poll or a vendor webhook found, before it becomes a notification.

Pure functions only (no database, no I/O): reading an instance's poller configuration, filling
a poller URL, telling CREATED from UPDATED against the seen-set, and batching changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

from hubgate.kit.javadate import fill_template

CREATED: Final = "CREATED"
UPDATED: Final = "UPDATED"
# D29: at most this many object events in one notification.
BATCH_SIZE: Final = 10
# D28: the floor of event.poller.refresh_interval, in minutes.
MIN_INTERVAL_MINUTES: Final = 1


@dataclass(frozen=True, slots=True)
class Change:
    object_type: str
    object_id: str
    event_type: str
    raw: dict[str, Any]
    digest: str


@dataclass(frozen=True, slots=True)
class PollerSpec:
    """One resource of ``event.poller.configuration``."""

    resource: str
    url: str
    id_field: str
    interval_minutes: int
    poll_delay_seconds: int = 0
    # From ``datesConfiguration.createdDateField``: lets the first poll report objects made
    # after events were enabled instead of treating everything it finds as already there.
    created_field: str | None = None


def digest(obj: Mapping[str, Any]) -> str:
    """A stable fingerprint of an object's content: key order and spacing do not matter."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json_object(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def poller_specs(configuration: Mapping[str, str | None]) -> list[PollerSpec]:
    """The resources to poll; entries without a url are skipped (there is nothing to run)."""
    raw_interval = configuration.get("event.poller.refresh_interval") or "15"
    interval = max(int(raw_interval) if raw_interval.isdigit() else 15, MIN_INTERVAL_MINUTES)
    specs = []
    for resource, entry in sorted(
        _json_object(configuration.get("event.poller.configuration")).items()
    ):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        dates = entry.get("datesConfiguration")
        created = dates.get("createdDateField") if isinstance(dates, dict) else None
        delay = entry.get("pollDelay", 0)
        specs.append(
            PollerSpec(
                resource=str(resource)[:100],
                url=entry["url"],
                id_field=str(entry.get("idField") or "id")[:100],
                interval_minutes=interval,
                poll_delay_seconds=delay if isinstance(delay, int) and delay >= 0 else 0,
                created_field=created if isinstance(created, str) and created else None,
            )
        )
    return specs


def _placeholder_end(template: str, at: int) -> int:
    """Index just past the ``}`` closing the placeholder at ``at`` (quoted text skipped)."""
    quoted = False
    for i in range(at + 2, len(template)):
        c = template[i]
        if c == "'":
            quoted = not quoted
        elif c == "}" and not quoted:
            return i + 1
    raise ValueError(f"unterminated placeholder at position {at}")


def fill_url(template: str, last_poll: datetime) -> str:
    """Fill every placeholder from ``last_poll`` and percent-encode what was filled.

    Only the filled values are encoded: the template's own text is already a URL, while a
    value such as ``Wed, 05 Mar 2026 07:08:09 +0000`` holds a ``+`` and spaces that would
    otherwise change meaning in a query string.
    """
    out: list[str] = []
    i = 0
    while (at := template.find("${", i)) >= 0:
        end = _placeholder_end(template, at)
        out.append(template[i:at])
        out.append(quote(fill_template(template[at:end], last_poll), safe=""))
        i = end
    out.append(template[i:])
    return "".join(out)


def object_id(record: Mapping[str, Any], id_field: str) -> str | None:
    value = record.get(id_field)
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)[:255]


def parse_date(value: Any) -> datetime | None:
    """An object's date in the forms vendors use: ISO 8601, RFC 2822, or epoch seconds/ms."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if not isinstance(value, str) or not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def diff(
    records: Iterable[Mapping[str, Any]],
    *,
    object_type: str,
    id_field: str,
    seen: Mapping[str, str],
) -> list[Change]:
    """New ids are CREATED, known ids with other content UPDATED, the rest nothing.

    Records without an id cannot be told apart and are skipped; an id that comes twice in one
    fetch (a page boundary moved under the vendor) counts once, with its last content.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        key = object_id(record, id_field)
        if key is not None:
            latest.pop(key, None)
            latest[key] = record
    changes = []
    for key, record in latest.items():
        fingerprint = digest(record)
        previous = seen.get(key)
        if previous == fingerprint:
            continue
        changes.append(
            Change(
                object_type=object_type,
                object_id=key,
                event_type=CREATED if previous is None else UPDATED,
                raw=dict(record),
                digest=fingerprint,
            )
        )
    return changes


def made_since(change: Change, created_field: str | None, since: datetime) -> bool:
    """For the first poll: whether the object was created after events were enabled."""
    if created_field is None:
        return False
    created = parse_date(change.raw.get(created_field))
    # Vendors stamp whole seconds; an object made in the very second events were enabled
    # counts as new rather than risk losing it.
    return created is not None and created >= since.replace(microsecond=0)


def batches(changes: Sequence[Change], size: int = BATCH_SIZE) -> Iterator[Sequence[Change]]:
    """Changes in notification-sized groups, each of one object type."""
    by_type: dict[str, list[Change]] = {}
    for change in changes:
        by_type.setdefault(change.object_type, []).append(change)
    for group in by_type.values():
        for start in range(0, len(group), size):
            yield group[start : start + size]
