"""The rules of events (D28-D31): pollers, diffs, notifications and their retries.

No SQL (see repository.py) and no commit: the job or request that calls these owns the
transaction. A poll is split in two around the vendor call (``prepare_poll``, then
``apply_poll``) so that no transaction stays open while the vendor answers, and ``apply_poll``
writes events, cursor and seen-set together or not at all.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.events import changes as ch
from hubgate.events.models import (
    DISPATCHED,
    FAILED,
    NEW,
    NOTIFIED,
    Event,
    EventPoller,
)
from hubgate.events.repository import EventRepository, NewEvent, Settled, StatusRow
from hubgate.events.signing import notification_headers
from hubgate.formulas import triggers as formula_triggers
from hubgate.hub import routing
from hubgate.hub.service import parse_hub_path
from hubgate.instances.models import Instance
from hubgate.instances.presenter import iso
from hubgate.instances.service import decrypt_configuration
from hubgate.kit.egress import EgressError, EgressTimeouts
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.settings import Settings

# How the poller reaches the hub pipeline; hubgate.hub.service.fetch_all in production.
Fetch = Callable[[Runtime, Instance, str], Awaitable[list[dict[str, Any]]]]

RESPONSE_EXCERPT_CHARS = 1000
SYNC_BATCH = 5000
DUE_BATCH = 5000


def utcnow() -> datetime:
    return datetime.now(UTC)


def _hub_key(runtime: Runtime, element_key: str) -> str:
    element = runtime.registry.find(element_key)
    return element.manifest.hub if element is not None else ""


def polls(configuration: Mapping[str, str | None], disabled: bool) -> bool:
    return (
        not disabled
        and configuration.get("event.notification.enabled") == "true"
        and (configuration.get("event.vendor.type") or "polling") == "polling"
    )


# -- pollers -----------------------------------------------------------------------------------


async def sync_pollers(session: AsyncSession, now: datetime) -> int:
    """Bring poller rows in line with instance configurations; returns instances touched.

    Writers of an instance sync its pollers in their own transaction (``instance_saved``);
    this catches what they did not write (a 410's atomic update, rows from before).
    """
    repo = EventRepository(session)
    instances = await repo.instances_to_sync(SYNC_BATCH)
    for instance in instances:
        await sync_instance_pollers(session, instance, now)
    return len(instances)


async def instance_saved(session: AsyncSession, instance: Instance) -> None:
    """The hook every writer of an instance runs in its transaction (instances.changes)."""
    await sync_instance_pollers(session, instance, utcnow())


async def sync_instance_pollers(session: AsyncSession, instance: Instance, now: datetime) -> None:
    """The instance's pollers as its configuration says, within the caller's transaction.

    A poller is born in the transaction that enables events: ``now``, a moment before that
    commit, is its cut-off. Its first poll reports the objects made since (by the created-date
    field, D131) and records the rest as known; it is due at once. Disabling events (or the
    instance) drops the pollers and what they had seen, so enabling again starts afresh.
    """
    repo = EventRepository(session)
    existing = {p.resource: p for p in await repo.pollers_of(instance.id)}
    wanted = (
        {s.resource: s for s in ch.poller_specs(instance.configuration)}
        if polls(instance.configuration, instance.disabled)
        else {}
    )
    await repo.remove_pollers(instance.id, [r for r in existing if r not in wanted])
    for resource, spec in wanted.items():
        poller = existing.get(resource)
        if poller is None:
            await repo.add_poller(
                EventPoller(
                    instance_id=instance.id,
                    resource=resource,
                    instance_version=instance.version,
                    url=spec.url,
                    id_field=spec.id_field,
                    interval_minutes=spec.interval_minutes,
                    poll_delay_seconds=spec.poll_delay_seconds,
                    enabled_at=now,
                    cursor_at=now,
                    primed=False,
                    next_poll_at=now,
                    last_error=spec.problem,
                    last_error_at=now if spec.problem else None,
                    consecutive_failures=0,
                    polls=0,
                )
            )
            continue
        if poller.id_field != spec.id_field:
            # Seen ids under another field mean nothing now: start afresh from this moment,
            # as if events were enabled now (what was reported is not reported again).
            poller.primed = False
            poller.enabled_at = now
            await repo.forget_seen(instance.id, [resource])
        if poller.interval_minutes != spec.interval_minutes:
            since = poller.last_poll_at or poller.enabled_at
            poller.next_poll_at = since + timedelta(minutes=spec.interval_minutes)
        if spec.problem is not None:
            poller.last_error = spec.problem
            poller.last_error_at = now
        elif poller.url != spec.url:
            # A new URL has not failed yet; the next poll says whether it works.
            poller.last_error = None
        poller.url = spec.url
        poller.id_field = spec.id_field
        poller.interval_minutes = spec.interval_minutes
        poller.poll_delay_seconds = spec.poll_delay_seconds
        poller.instance_version = instance.version
    await session.flush()


async def due_polls(
    session: AsyncSession, before: datetime, lock_prefix: str
) -> Sequence[tuple[int, str]]:
    """Pollers due whose poll is not queued or running already (see ``due_pollers``)."""
    return await EventRepository(session).due_pollers(before, DUE_BATCH, lock_prefix)


async def make_due(session: AsyncSession, instance_id: int, now: datetime) -> int:
    """Make every poller of an instance due now (an operator's "poll now"); returns how many."""
    return await EventRepository(session).make_due(instance_id, now)


def next_due(due: datetime, interval_minutes: int, now: datetime) -> datetime:
    """Fixed rate from the previous due time, so a poll that starts a little late does not
    push every later poll back; after an outage longer than an interval, from now."""
    interval = timedelta(minutes=interval_minutes)
    following = due + interval
    return following if following > now else now + interval


@dataclass(frozen=True)
class PollPlan:
    instance: Instance
    resource: str
    id_field: str
    url: str
    cursor_at: datetime
    due_at: datetime
    interval_minutes: int
    primed: bool
    enabled_at: datetime
    created_field: str | None


async def prepare_poll(
    session: AsyncSession, instance_id: int, resource: str, now: datetime, slack: timedelta
) -> PollPlan | None:
    """What to fetch, or None when the poller is gone or not due (polled already)."""
    found = await EventRepository(session).poller_and_instance(instance_id, resource)
    if found is None:
        return None
    poller, instance = found
    if poller.next_poll_at > now + slack or not polls(instance.configuration, instance.disabled):
        return None
    spec = next(
        (s for s in ch.poller_specs(instance.configuration) if s.resource == resource), None
    )
    if spec is not None and spec.problem is not None:
        await poll_failed(session, instance_id, resource, f"Cannot poll: {spec.problem}", now)
        return None
    moment = poller.cursor_at - timedelta(seconds=poller.poll_delay_seconds)
    try:
        url = ch.fill_url(poller.url, moment)
    except ValueError as error:
        await poll_failed(session, poller.instance_id, resource, f"Bad poller URL: {error}", now)
        return None
    return PollPlan(
        instance=instance,
        resource=resource,
        id_field=poller.id_field,
        url=url,
        cursor_at=poller.cursor_at,
        due_at=poller.next_poll_at,
        interval_minutes=poller.interval_minutes,
        primed=poller.primed,
        enabled_at=poller.enabled_at,
        created_field=spec.created_field if spec is not None else None,
    )


async def poll_failed(
    session: AsyncSession, instance_id: int, resource: str, message: str, now: datetime
) -> None:
    """Keep the cursor (the next poll covers this one's window) and wait an interval."""
    poller = await EventRepository(session).poller(instance_id, resource, for_update=True)
    if poller is None:
        return
    poller.last_error = message[:1000]
    poller.last_error_at = now
    poller.consecutive_failures += 1
    poller.next_poll_at = next_due(poller.next_poll_at, poller.interval_minutes, now)
    await session.flush()


async def apply_poll(
    session: AsyncSession,
    runtime: Runtime,
    plan: PollPlan,
    records: Sequence[Mapping[str, Any]],
    started: datetime,
) -> list[uuid.UUID]:
    """Events, cursor and seen-set of one poll, in the caller's transaction: one statement
    each for the poller, the seen-set and the events.

    The poller's update is conditional on the cursor the fetch used, and locks its row: if
    another poll committed in between (a stalled job run twice), this one's results are dropped.
    """
    repo = EventRepository(session)
    instance_id = plan.instance.id
    due = next_due(plan.due_at, plan.interval_minutes, started)
    if not await repo.advance_poller(instance_id, plan.resource, plan.cursor_at, started, due):
        return []
    fetched = ch.fingerprints(records, plan.id_field)
    created = await repo.remember_changed(
        instance_id, plan.resource, [(key, d) for key, (_, d) in fetched.items()], started
    )
    found = ch.changes_of(plan.resource, fetched, created)
    if plan.primed:
        reported = found
    else:
        # The first poll records what exists; the objects made since events were enabled
        # are reported (known by the poller's created-date field, else the manifest's).
        created_field = plan.created_field or created_field_of(runtime, plan.instance, plan.url)
        reported = [c for c in found if ch.made_since(c, created_field, plan.enabled_at)]
    events = _new_events(runtime, plan.instance, reported, "polling", started, started)
    if events and await repo.insert_events(events):
        await formula_triggers.events_recorded(session, runtime, events)
    return [event.id for event in events]


def created_field_of(runtime: Runtime, instance: Instance, url: str) -> str | None:
    """The created-date field the element's manifest declares for the resource ``url``
    lists (Twilio's messages and calls: ``date_created``), or None."""
    element = runtime.registry.find(instance.element_key)
    if element is None:
        return None
    try:
        matched = routing.match(element.manifest, "GET", parse_hub_path("GET", url).segments)
    except HubgateError:
        return None
    return matched.resource.poller.created_field


def _new_events(
    runtime: Runtime,
    instance: Instance,
    found: Sequence[ch.Change],
    source: str,
    now: datetime,
    poll_date: datetime,
) -> list[NewEvent]:
    hub_key = _hub_key(runtime, instance.element_key)
    events = []
    for batch in ch.batches(found):
        first = batch[0]
        events.append(
            NewEvent(
                id=uuid.uuid4(),
                organization_id=instance.organization_id,
                account_id=instance.account_id,
                instance_id=instance.id,
                user_id=instance.user_id,
                instance_name=instance.name,
                element_key=instance.element_key,
                source=source,
                object_type=first.object_type,
                object_id=first.object_id,
                event_type=first.event_type,
                events=[
                    {
                        "objectType": c.object_type,
                        "objectId": c.object_id,
                        "eventType": c.event_type,
                        "elementKey": instance.element_key,
                        "hubKey": hub_key,
                        "date": iso(now),
                        "pollDate": iso(poll_date),
                    }
                    for c in batch
                ],
                raw={first.object_type: [c.raw for c in batch]},
                event_date=now,
            )
        )
    return events


# -- vendor webhooks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorReport:
    """What one vendor webhook reported for one connector instance, once verified."""

    instance: Instance
    changes: Sequence[ch.Change]


async def record_vendor_changes(
    session: AsyncSession,
    runtime: Runtime,
    instance: Instance,
    found: Sequence[ch.Change],
    now: datetime,
) -> list[uuid.UUID]:
    """Events for what one vendor webhook reported (``record_vendor_reports`` of one)."""
    (created,) = await record_vendor_reports(session, runtime, [VendorReport(instance, found)], now)
    return created


async def record_vendor_reports(
    session: AsyncSession, runtime: Runtime, reports: Sequence[VendorReport], now: datetime
) -> list[list[uuid.UUID]]:
    """Events for what vendor webhooks reported, minus what was reported already: an event
    id taken before (a vendor retrying its webhook, D380), or the same status twice (judged by
    the same seen-set as polls). One statement each for the vendor ids (when any), the
    seen-set and the events, however many reports (D460); answers each report's events.

    Two reports must not name the same object or vendor event id of one instance (one
    statement cannot write a row twice, and their order would be lost): ``report_keys``
    tells which they name."""
    repo = EventRepository(session)
    found = [list(report.changes) for report in reports]
    vendor_ids = [
        (report.instance.id, c.vendor_event_id)
        for report, changes in zip(reports, found, strict=True)
        for c in changes
        if c.vendor_event_id is not None
    ]
    if vendor_ids:
        taken = await repo.take_vendor_event_ids(vendor_ids, now)
        found = [
            [
                c
                for c in changes
                if c.vendor_event_id is None or (report.instance.id, c.vendor_event_id) in taken
            ]
            for report, changes in zip(reports, found, strict=True)
        ]
    changed = await repo.remember_seen(
        [
            (report.instance.id, c.object_type, c.object_id, c.digest)
            for report, changes in zip(reports, found, strict=True)
            for c in changes
        ],
        now,
    )
    made = [
        _new_events(
            runtime,
            report.instance,
            [c for c in changes if (report.instance.id, c.object_type, c.object_id) in changed],
            "webhook",
            now,
            now,
        )
        for report, changes in zip(reports, found, strict=True)
    ]
    events = [event for some in made for event in some]
    if events:
        # One statement, which also tells which connector instances a formula instance listens
        # to (D431, D432): for the others the triggers have nothing to start and are not asked.
        listened = await repo.insert_events(events)
        if listened:
            await formula_triggers.events_recorded(
                session, runtime, [e for e in events if e.instance_id in listened]
            )
    return [[event.id for event in some] for some in made]


def report_keys(report: VendorReport) -> frozenset[tuple[str, int, str, str]]:
    """The seen-set keys and the vendor event ids a report writes (``record_vendor_reports``)."""
    instance_id = report.instance.id
    keys = {("seen", instance_id, c.object_type, c.object_id) for c in report.changes}
    keys.update(
        ("vendor id", instance_id, "", c.vendor_event_id)
        for c in report.changes
        if c.vendor_event_id is not None
    )
    return frozenset(keys)


# -- deliveries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event_id: uuid.UUID
    instance_id: int
    url: str
    body: bytes
    signature_key: str | None
    owner: int
    # Attempts already made in this run of the schedule, as the lease found them.
    attempt_count: int
    # When the lease ends: an attempt that could not finish before it is not started (D310).
    lease_until: datetime | None = None

    @property
    def host(self) -> str:
        """The callback host as connections are kept: scheme, host and port."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


@dataclass(frozen=True)
class AttemptResult:
    at: datetime
    status_code: int | None
    latency_ms: float
    response: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        if self.status_code is None:
            return self.error or "no answer"
        return f"HTTP {self.status_code}"


def notification_body(event: Event) -> bytes:
    """The D29 body; built from the stored record, so every retry sends the same bytes."""
    message = {
        "eventId": str(event.id),
        "instanceId": event.instance_id,
        "instanceName": event.instance_name,
        "elementKey": event.element_key,
        "accountId": event.account_id,
        "userId": event.user_id,
        "events": event.events,
        "raw": event.raw,
    }
    return json.dumps({"message": message}, separators=(",", ":"), ensure_ascii=False).encode()


def lease_seconds(settings: Settings) -> float:
    """How long one attempt may hold an event: the request's time cap and some room."""
    return settings.events_delivery_timeout + 5.0


def batch_lease_seconds(settings: Settings) -> float:
    """A batched notification may first wait for its host's slot, behind at most one round
    of attempts to that host (D310), then make its own attempt."""
    return lease_seconds(settings) + settings.events_delivery_timeout


def _delivery_of(
    configuration: Mapping[str, str | None],
    event: Event,
    owner: int,
    lease_until: datetime,
) -> Delivery | str:
    """The request for a leased event, or why it cannot be sent (it then fails)."""
    url = configuration.get("event.notification.callback.url")
    if configuration.get("event.notification.enabled") != "true":
        return "Event notifications are disabled for this instance"
    if not url:
        return "The instance has no event.notification.callback.url"
    return Delivery(
        event_id=event.id,
        instance_id=event.instance_id,
        url=url,
        body=notification_body(event),
        signature_key=configuration.get("event.notification.signature.key") or None,
        owner=owner,
        attempt_count=event.attempt_count,
        lease_until=lease_until,
    )


async def prepare_delivery(
    session: AsyncSession, runtime: Runtime, event_id: uuid.UUID, now: datetime, owner: int
) -> Delivery | None:
    """Take the event's lease and build its request; None when there is nothing to send now
    (already delivered or failed, a retry not due yet, or another job's attempt in flight)."""
    repo = EventRepository(session)
    until = now + timedelta(seconds=lease_seconds(runtime.settings))
    claimed = await repo.claim(event_id, due=now + timedelta(seconds=1), until=until, owner=owner)
    if claimed is None:
        return None
    event, instance = claimed
    built = _delivery_of(decrypt_configuration(runtime.keyring, instance), event, owner, until)
    if isinstance(built, str):
        await repo.fail(event.id, built)
        return None
    return built


async def prepare_deliveries(
    session: AsyncSession,
    runtime: Runtime,
    now: datetime,
    owner: int,
    *,
    reclaim: bool,
    limit: int,
) -> list[Delivery]:
    """Lease up to ``limit`` due notifications at once and build their requests (D310);
    those whose instance no longer takes notifications fail, as one by one (D133)."""
    repo = EventRepository(session)
    until = now + timedelta(seconds=batch_lease_seconds(runtime.settings))
    claimed = await repo.claim_batch(
        due=now + timedelta(seconds=1), until=until, owner=owner, reclaim=reclaim, limit=limit
    )
    # Decrypted once per instance and version: a batch holds many events of few instances.
    configurations: dict[tuple[int, int], Mapping[str, str | None]] = {}
    deliveries = []
    for event, instance in claimed:
        key = (instance.id, instance.version)
        if key not in configurations:
            configurations[key] = decrypt_configuration(runtime.keyring, instance)
        built = _delivery_of(configurations[key], event, owner, until)
        if isinstance(built, str):
            await repo.fail(event.id, built)
        else:
            deliveries.append(built)
    return deliveries


async def send(runtime: Runtime, delivery: Delivery) -> AttemptResult:
    """One POST through the guarded egress client (D32); never raises for network trouble."""
    settings = runtime.settings
    at = utcnow()
    headers = notification_headers(
        str(delivery.event_id), delivery.body, delivery.signature_key, now=at
    )
    timeout = settings.events_delivery_timeout
    connect = min(timeout, settings.events_delivery_connect_timeout)
    timeouts = EgressTimeouts(connect=connect, read=timeout, total=timeout)
    try:
        response = await runtime.egress.request(
            "POST", delivery.url, headers=headers, data=delivery.body, timeout=timeouts
        )
    except EgressError as error:
        elapsed = (utcnow() - at).total_seconds() * 1000
        return AttemptResult(at, None, elapsed, None, str(error)[:RESPONSE_EXCERPT_CHARS])
    excerpt = response.body[: RESPONSE_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return AttemptResult(
        at, response.status, response.elapsed_ms, excerpt[:RESPONSE_EXCERPT_CHARS], None
    )


def retry_delay(settings: Settings, attempt: int) -> float | None:
    """Seconds to wait after the ``attempt``-th failure (1-based), or None: give up."""
    schedule = settings.events_retry_schedule
    if attempt > len(schedule):
        return None
    jitter = settings.events_retry_jitter
    return float(schedule[attempt - 1]) * (1 + random.uniform(-jitter, jitter))


GONE = "The receiver answered 410 Gone: event notifications were disabled"


def outcome_of(settings: Settings, delivery: Delivery, result: AttemptResult) -> Settled:
    """What an attempt makes of its event (D29, D133); ``next_attempt`` is the retry time
    when the status is DISPATCHED."""
    attempt = {
        "attempted_at": result.at,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "response": result.response,
        "error": result.error,
    }
    attempts = delivery.attempt_count
    if result.succeeded:
        return Settled(delivery.event_id, result.at, NOTIFIED, attempts, result.at, None, attempt)
    if result.status_code == 410:
        return Settled(delivery.event_id, result.at, FAILED, attempts, None, GONE, attempt)
    attempts += 1
    delay = retry_delay(settings, attempts)
    if delay is None:
        reason = f"No 2xx answer after {attempts} attempts; last: {result.describe()}"
        return Settled(delivery.event_id, result.at, FAILED, attempts, None, reason, attempt)
    retry_at = result.at + timedelta(seconds=delay)
    reason = f"Last attempt: {result.describe()}"
    return Settled(delivery.event_id, retry_at, DISPATCHED, attempts, None, reason, attempt)


async def _gone(session: AsyncSession, instance_id: int, at: datetime) -> None:
    """A 410's consequences (D134), in the transaction that records it."""
    repo = EventRepository(session)
    # One atomic update of the row: no merge of a configuration read earlier.
    await repo.disable_notifications(instance_id)
    await repo.fail_pending(instance_id, GONE)
    instance = await repo.instance(instance_id)
    if instance is not None:
        await sync_instance_pollers(session, instance, at)


async def record_attempt(
    session: AsyncSession, settings: Settings, delivery: Delivery, result: AttemptResult
) -> datetime | None:
    """Store the attempt and what follows from it; returns when to try again, if ever."""
    settled = outcome_of(settings, delivery, result)
    outcome = {
        "new_status": settled.status,
        "attempts": settled.attempts,
        "next_attempt": settled.next_attempt,
        "notified": settled.notified,
        "reason": settled.reason,
    }
    repo = EventRepository(session)
    if not await repo.settle(settled.attempt or {}, delivery.event_id, delivery.owner, outcome):
        # Redelivered while this attempt was in flight: the redelivery owns the outcome.
        return None
    if result.status_code == 410:
        await _gone(session, delivery.instance_id, result.at)
    return settled.next_attempt if settled.status == DISPATCHED else None


async def record_batch(
    session: AsyncSession,
    settings: Settings,
    owner: int,
    attempted: Sequence[tuple[Delivery, AttemptResult]],
    handed_back: Sequence[tuple[Delivery, datetime]],
) -> list[datetime]:
    """Store a batch's attempts and outcomes in one statement (D310); a notification handed
    back untried (its host was busy) is due again at the time given, its attempts uncounted.
    Answers the times at which notifications of this batch are due again."""
    settled = [outcome_of(settings, delivery, result) for delivery, result in attempted]
    settled += [Settled(delivery.event_id, at) for delivery, at in handed_back]
    held = await EventRepository(session).settle_batch(owner, settled)
    for delivery, result in attempted:
        if result.status_code == 410 and delivery.event_id in held:
            await _gone(session, delivery.instance_id, result.at)
    return [
        s.next_attempt
        for s in settled
        if s.event_id in held and (s.attempt is None or s.status == DISPATCHED)
    ]


async def redeliver(session: AsyncSession, event: Event, now: datetime) -> None:
    """Start the retry schedule over for an event, whatever became of it (D29)."""
    event.status = NEW
    event.attempt_count = 0
    event.next_attempt_at = now
    event.leased_by = None
    event.notified_at = None
    event.failure_reason = None
    await session.flush()


# D380: Slack retries for minutes; a day is far beyond any vendor's retry schedule.
VENDOR_EVENT_IDS_KEPT = timedelta(days=1)


async def forget_vendor_event_ids(session: AsyncSession, now: datetime) -> int:
    """Drop vendor event ids kept longer than ``VENDOR_EVENT_IDS_KEPT``, a bounded batch."""
    repo = EventRepository(session)
    return await repo.forget_vendor_event_ids(now - VENDOR_EVENT_IDS_KEPT, DUE_BATCH)


async def overdue(session: AsyncSession, before: datetime) -> Sequence[uuid.UUID]:
    return await EventRepository(session).overdue(before, DUE_BATCH)


# -- operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceStatus:
    row: StatusRow
    # How far past due the next poll is: zero while pollers keep up.
    lag_seconds: float

    def as_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "instanceId": row.instance_id,
            "name": row.name,
            "elementKey": row.element_key,
            "eventsEnabled": bool(row.events_enabled),
            "vendorType": row.vendor_type,
            "lastPollDate": iso(row.last_poll_at) if row.last_poll_at else None,
            "nextPollDate": iso(row.next_poll_at) if row.next_poll_at else None,
            "lagSeconds": round(self.lag_seconds, 1),
            "lastError": row.last_error,
            "polls": int(row.polls),
            "pendingDeliveries": row.pending,
            "failedDeliveries": row.failed,
            "notifiedDeliveries": row.notified,
        }


def _status(row: StatusRow, now: datetime, slack: timedelta) -> InstanceStatus:
    lag = 0.0
    if row.next_poll_at is not None:
        lag = max(0.0, (now - row.next_poll_at - slack).total_seconds())
    return InstanceStatus(row, lag)


async def status(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant: Tenant | None = None,
    instance_id: int | None = None,
    now: datetime | None = None,
) -> list[InstanceStatus]:
    rows = await EventRepository(session).status_rows(tenant=tenant, instance_id=instance_id)
    slack = tick_slack(settings)
    moment = now or utcnow()
    return [_status(row, moment, slack) for row in rows]


def tick_slack(settings: Settings) -> timedelta:
    """A poll due within half a tick is run on this tick: due times drift by the few hundred
    milliseconds a tick takes to start, and must not slip to the next tick because of it."""
    return timedelta(seconds=settings.events_tick_seconds / 2)
