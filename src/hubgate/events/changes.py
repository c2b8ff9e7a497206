"""Object changes: what a poll or a vendor webhook found, before it becomes a notification.

Pure functions only (no database, no I/O): reading an instance's poller configuration, filling
a poller URL, telling CREATED from UPDATED against the seen-set, and batching changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

# Changes and their fingerprints are part of the connector SDK: element webhooks make them.
from hubgate.elements.sdk import CREATED as CREATED
from hubgate.elements.sdk import UPDATED as UPDATED
from hubgate.elements.sdk import Change as Change
from hubgate.elements.sdk import digest as digest
from hubgate.kit.javadate import fill_template

# D29: at most this many object events in one notification.
BATCH_SIZE: Final = 10
# D28: the floor of event.poller.refresh_interval, in minutes.
MIN_INTERVAL_MINUTES: Final = 1
# The longest pollDelay, in seconds: meant for a vendor's minutes of lag, a day bounds it.
MAX_DELAY: Final = 86_400


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
    # Without it, the element's manifest may name the field (a resource's ``createdField``).
    created_field: str | None = None
    # Why this entry cannot run (written before entries were checked on write), else None.
    problem: str | None = None


def _json_object(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def poller_specs(configuration: Mapping[str, str | None]) -> list[PollerSpec]:
    """The resources to poll, one spec per entry; an entry that cannot run carries its
    ``problem``, so that its poller can say so instead of never running."""
    raw_interval = configuration.get("event.poller.refresh_interval") or "15"
    interval = max(int(raw_interval) if raw_interval.isdigit() else 15, MIN_INTERVAL_MINUTES)
    specs = []
    for resource, entry in sorted(
        _json_object(configuration.get("event.poller.configuration")).items()
    ):
        problem = entry_problem(resource, entry)
        fields: dict[str, Any] = entry if isinstance(entry, dict) else {}
        url = fields.get("url")
        if problem is not None:
            specs.append(
                PollerSpec(
                    resource=str(resource)[:100],
                    url=url if isinstance(url, str) else "",
                    id_field="id",
                    interval_minutes=interval,
                    problem=problem,
                )
            )
            continue
        dates = fields.get("datesConfiguration") or {}
        specs.append(
            PollerSpec(
                resource=resource,
                url=str(url),
                id_field=str(fields.get("idField") or "id"),
                interval_minutes=interval,
                poll_delay_seconds=int(fields.get("pollDelay") or 0),
                created_field=dates.get("createdDateField") or None,
            )
        )
    return specs


def _is_field_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 100


def entry_problem(resource: str, entry: Any) -> str | None:
    """Why one resource of ``event.poller.configuration`` cannot be polled, or None.

    The message names the resource and the field (``messages.url``), as the 400 on write and
    the poller's ``lastError`` show it.
    """
    if not 0 < len(resource) <= 100:
        return f"resource names are 1 to 100 characters ({resource[:100]!r})"
    if not isinstance(entry, dict):
        return f"{resource} must be an object with a url"
    url = entry.get("url")
    segments = [s for s in urlsplit(url).path.split("/") if s] if isinstance(url, str) else []
    if len(segments) < 3 or segments[0] != "hubs":
        return f"{resource}.url must be a hub path such as /hubs/messaging/{resource}"
    try:
        fill_url(str(url), datetime.now(UTC))
    except ValueError as error:
        return f"{resource}.url cannot be filled: {error}"
    if "idField" in entry and not _is_field_name(entry["idField"]):
        return f"{resource}.idField must be a field name"
    delay = entry.get("pollDelay", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY:
        return f"{resource}.pollDelay must be whole seconds from 0 to {MAX_DELAY}"
    dates = entry.get("datesConfiguration", {})
    if not isinstance(dates, dict):
        return f"{resource}.datesConfiguration must be an object"
    if "createdDateField" in dates and not _is_field_name(dates["createdDateField"]):
        return f"{resource}.datesConfiguration.createdDateField must be a field name"
    return None


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


def fingerprints(
    records: Iterable[Mapping[str, Any]], id_field: str
) -> dict[str, tuple[Mapping[str, Any], str]]:
    """Each object of a fetch by id, with the digest of its content, in the order fetched.

    Records without an id cannot be told apart and are skipped; an id that comes twice in one
    fetch (a page boundary moved under the vendor) counts once, with its last content.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        key = object_id(record, id_field)
        if key is not None:
            latest.pop(key, None)
            latest[key] = record
    return {key: (record, digest(record)) for key, record in latest.items()}


def changes_of(
    object_type: str,
    found: Mapping[str, tuple[Mapping[str, Any], str]],
    created: Mapping[str, bool],
) -> list[Change]:
    """The changes among ``found`` (from ``fingerprints``): the ids in ``created``, CREATED
    where it says True and UPDATED where False, in the order fetched."""
    return [
        Change(
            object_type=object_type,
            object_id=key,
            event_type=CREATED if created[key] else UPDATED,
            raw=dict(record),
            digest=fingerprint,
        )
        for key, (record, fingerprint) in found.items()
        if key in created
    ]


def diff(
    records: Iterable[Mapping[str, Any]],
    *,
    object_type: str,
    id_field: str,
    seen: Mapping[str, str],
) -> list[Change]:
    """New ids are CREATED, known ids with other content UPDATED, the rest nothing (the
    seen-set's upsert answers the same in one statement, ``remember_changed``)."""
    found = fingerprints(records, id_field)
    created = {key: key not in seen for key, (_, d) in found.items() if seen.get(key) != d}
    return changes_of(object_type, found, created)


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
