"""All SQL about events, pollers and the seen-set; tenant-facing reads go through ``scoped``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant, scoped
from hubgate.events.models import (
    FAILED,
    NEW,
    PENDING_STATUSES,
    Event,
    EventAttempt,
    EventPoller,
    SeenObject,
    VendorEventId,
)
from hubgate.formulas.repository import listens_to
from hubgate.instances.models import Instance


def _setting(name: str) -> ColumnElement[Any]:
    return Instance.configuration.op("->>")(name)


def events_enabled() -> ColumnElement[bool]:
    return _setting("event.notification.enabled") == "true"


def polling_enabled() -> ColumnElement[bool]:
    """Instances whose events come from polling (D28) and that may be used at all."""
    return and_(
        events_enabled(),
        func.coalesce(_setting("event.vendor.type"), "polling") == "polling",
        not_(Instance.disabled),
    )


# The two statements of every delivery, built once with bound parameters: constructing
# statements costs more Python time than running them on this path (measured).
_EVENTS = cast(Table, Event.__table__)
_INSTANCES = cast(Table, Instance.__table__)
_INSTANCE_LABELS = [(c, c.label(f"instance_{c.name}")) for c in _INSTANCES.c]
_CLAIM = (
    update(_EVENTS)
    .where(
        _EVENTS.c.id == bindparam("event_id"),
        _EVENTS.c.instance_id == _INSTANCES.c.id,
        _EVENTS.c.status.in_(PENDING_STATUSES),
        or_(
            _EVENTS.c.next_attempt_at <= bindparam("due"),
            _EVENTS.c.leased_by == bindparam("owner"),
        ),
    )
    .values(next_attempt_at=bindparam("until"), leased_by=bindparam("owner"))
    .returning(*_EVENTS.c, *(label for _, label in _INSTANCE_LABELS))
)
_RECORDED = (
    insert(cast(Table, EventAttempt.__table__))
    .values(
        event_id=bindparam("event_id"),
        attempted_at=bindparam("attempted_at"),
        status_code=bindparam("status_code"),
        latency_ms=bindparam("latency_ms"),
        response=bindparam("response"),
        error=bindparam("error"),
    )
    .cte("recorded")
)
_SETTLE = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"), _EVENTS.c.leased_by == bindparam("owner"))
    .values(
        leased_by=None,
        status=bindparam("new_status"),
        attempt_count=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt"),
        notified_at=bindparam("notified"),
        failure_reason=bindparam("reason"),
    )
    .returning(_EVENTS.c.id)
    .add_cte(_RECORDED)
)

# Batched deliveries (D310). The due notifications, oldest first, leased in one statement;
# SKIP LOCKED lets several dispatchers lease side by side without waiting on each other. The
# pending rows are found through the partial index ix_events_pending (its predicate is the
# status test), so the lease stays a HOT update, as the single lease above.
_DUE = (
    select(_EVENTS.c.id)
    .where(
        _EVENTS.c.status.in_(PENDING_STATUSES),
        or_(
            _EVENTS.c.next_attempt_at <= bindparam("due"),
            # A dispatcher run again after its worker died takes back its own leases at once.
            _EVENTS.c.leased_by == bindparam("reclaim"),
        ),
    )
    .order_by(_EVENTS.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .cte("due")
)
_CLAIM_BATCH = (
    update(_EVENTS)
    .where(_EVENTS.c.id == _DUE.c.id, _EVENTS.c.instance_id == _INSTANCES.c.id)
    .values(next_attempt_at=bindparam("until"), leased_by=bindparam("owner"))
    .returning(*_EVENTS.c, *(label for _, label in _INSTANCE_LABELS))
)
# The outcomes of a batch in one statement: each attempt made is recorded, and each event
# still leased by this owner takes its outcome. A notification handed back untried (its host
# was busy) keeps its status, attempt count and reason and only gets a new attempt time.
_SETTLE_BATCH = text(
    """
    WITH outcome AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:tried AS boolean[]), CAST(:statuses AS varchar[]),
            CAST(:attempts AS integer[]), CAST(:next_attempts AS timestamptz[]),
            CAST(:notified AS timestamptz[]), CAST(:reasons AS text[]),
            CAST(:attempted_at AS timestamptz[]), CAST(:status_codes AS integer[]),
            CAST(:latencies AS float8[]), CAST(:responses AS text[]), CAST(:errors AS text[])
        ) AS o(event_id, tried, new_status, attempts, next_attempt, notified, reason,
               attempted_at, status_code, latency_ms, response, error)
    ), recorded AS (
        INSERT INTO event_attempts
            (event_id, attempted_at, status_code, latency_ms, response, error)
        SELECT o.event_id, o.attempted_at, o.status_code, o.latency_ms, o.response, o.error
        FROM outcome o
        -- An instance deleted while its notification was in flight took the event along.
        WHERE o.tried AND EXISTS (SELECT FROM events e WHERE e.id = o.event_id)
    )
    UPDATE events AS e SET
        leased_by = NULL,
        next_attempt_at = o.next_attempt,
        status = CASE WHEN o.tried THEN o.new_status ELSE e.status END,
        attempt_count = CASE WHEN o.tried THEN o.attempts ELSE e.attempt_count END,
        notified_at = CASE WHEN o.tried THEN o.notified ELSE e.notified_at END,
        failure_reason = CASE WHEN o.tried THEN o.reason ELSE e.failure_reason END
    FROM outcome o
    WHERE e.id = o.event_id AND e.leased_by = :owner
    RETURNING e.id
    """
)


# The seen-set's upsert of one poll or of a group of vendor webhooks (D460), one statement
# whatever the number of objects and instances (arrays, not a VALUES list, so that it is
# compiled and prepared once). A row it inserted has no deleting or locking transaction
# (xmax 0); one it updated carries this transaction's id: that tells CREATED from UPDATED.
# Unchanged digests are neither written nor answered. A key may come only once (PostgreSQL
# refuses to update one row twice in a statement): callers give distinct keys.
_REMEMBER = text(
    """
    INSERT INTO event_seen AS s (instance_id, resource, object_id, digest, seen_at)
    SELECT o.instance_id, o.resource, o.object_id, o.digest, :at
    FROM unnest(
        CAST(:instance_ids AS bigint[]), CAST(:resources AS varchar[]),
        CAST(:object_ids AS varchar[]), CAST(:digests AS varchar[])
    ) AS o(instance_id, resource, object_id, digest)
    ON CONFLICT (instance_id, resource, object_id) DO UPDATE
        SET digest = excluded.digest, seen_at = excluded.seen_at
        WHERE s.digest <> excluded.digest
    RETURNING s.instance_id, s.resource, s.object_id, s.xmax = 0
    """
)
_TAKE_VENDOR_IDS = text(
    """
    INSERT INTO event_vendor_ids (instance_id, vendor_event_id, taken_at)
    SELECT i.instance_id, i.vendor_event_id, :at
    FROM unnest(CAST(:instance_ids AS bigint[]), CAST(:ids AS varchar[]))
        AS i(instance_id, vendor_event_id)
    ON CONFLICT DO NOTHING
    RETURNING instance_id, vendor_event_id
    """
)
# New events in one statement, however many and of however many connector instances (a
# poll's, or vendor webhooks recorded together), instead of the ORM's flush of Event objects
# (D431, D460, D463). Their values go as one JSON document of rows: one parameter whatever
# the number of events, so the statement is compiled and prepared once. psycopg dumps list
# parameters as text arrays in Python, escaping each quote of a JSON element with a regular
# expression: seven arrays were a sixth of serve's GIL-holding samples under the intake; one
# JSON text, encoded by the json module's C code, is not. The same statement answers which
# of the instances an active formula instance listens to, read in the statement's snapshot:
# the formula triggers' look-up then runs only for those (D432). A data-modifying WITH runs
# whether or not the query reads it.
_ADDED = (
    text(
        """
        INSERT INTO events
            (id, organization_id, account_id, instance_id, user_id, instance_name, element_key,
             source, object_type, object_id, event_type, events, raw, event_date, status,
             attempt_count, next_attempt_at)
        SELECT e.id, e.organization_id, e.account_id, e.instance_id, e.user_id,
            e.instance_name, e.element_key, e.source, e.object_type, e.object_id, e.event_type,
            e.events, e.raw, e.event_date, :status, 0, e.event_date
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e(
            id uuid, organization_id bigint, account_id bigint, instance_id bigint,
            user_id bigint, instance_name text, element_key text, source text, object_type text,
            object_id text, event_type text, events jsonb, raw jsonb, event_date timestamptz
        )
        RETURNING instance_id
        """
    )
    .columns(column("instance_id", BigInteger))
    .cte("added")
)
_ADD_LISTENED = (
    select(_ADDED.c.instance_id).distinct().where(exists().where(listens_to(_ADDED.c.instance_id)))
)


_POLLERS = cast(Table, EventPoller.__table__)
# procrastinate's jobs, as far as the tick asks about them (its schema, procrastinate 3.10).
_JOBS = table(
    "procrastinate_jobs",
    column("queueing_lock", String),
    column("lock", String),
    column("status", String),
)
# A poll's outcome, if its poller's cursor is still the one the fetch used (D381).
_ADVANCE = (
    update(_POLLERS)
    .where(
        _POLLERS.c.instance_id == bindparam("poller_instance"),
        _POLLERS.c.resource == bindparam("poller_resource"),
        _POLLERS.c.cursor_at == bindparam("expected_cursor"),
    )
    .values(
        cursor_at=bindparam("polled_at"),
        primed=True,
        last_poll_at=bindparam("polled_at"),
        polls=_POLLERS.c.polls + 1,
        consecutive_failures=0,
        last_error=None,
        next_poll_at=bindparam("next_due"),
    )
    .returning(_POLLERS.c.instance_id)
)


@dataclass(slots=True)
class NewEvent:
    """An event to insert (``insert_events``): NEW, not tried yet, due at its date. A plain
    value, not an ORM object: building Event objects was an eighth of serve's GIL-holding
    samples under the intake (D463)."""

    id: uuid.UUID
    organization_id: int
    account_id: int
    instance_id: int
    user_id: int
    instance_name: str
    element_key: str
    source: str
    object_type: str
    object_id: str
    event_type: str
    events: list[dict[str, Any]]
    raw: dict[str, Any]
    event_date: datetime


@dataclass(frozen=True)
class Settled:
    """What a batch records for one leased notification; ``attempt`` None: handed back untried."""

    event_id: uuid.UUID
    next_attempt: datetime
    status: str | None = None
    attempts: int = 0
    notified: datetime | None = None
    reason: str | None = None
    attempt: dict[str, Any] | None = None


@dataclass(frozen=True)
class StatusRow:
    instance_id: int
    name: str
    organization_id: int
    element_key: str
    events_enabled: bool
    vendor_type: str
    last_poll_at: datetime | None
    next_poll_at: datetime | None
    last_error: str | None
    polls: int
    pending: int
    failed: int
    notified: int


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- instances --------------------------------------------------------------------------

    async def instance(self, instance_id: int) -> Instance | None:
        # As the row is now, also when this session read it before an update statement.
        return await self.session.get(Instance, instance_id, populate_existing=True)

    async def instances_to_sync(self, limit: int) -> Sequence[Instance]:
        """Polling instances whose pollers are missing or older than the instance, and
        instances that still have pollers but no longer poll."""
        current = exists().where(
            EventPoller.instance_id == Instance.id,
            EventPoller.instance_version == Instance.version,
        )
        any_poller = exists().where(EventPoller.instance_id == Instance.id)
        stmt = (
            select(Instance)
            .where(
                or_(
                    and_(polling_enabled(), not_(current)),
                    and_(not_(polling_enabled()), any_poller),
                )
            )
            .order_by(Instance.id)
            .limit(limit)
            # An instance being written right now is synced by its writer, in its transaction:
            # skipped here rather than synced from the configuration it is replacing.
            .with_for_update(of=Instance, key_share=True, skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def disable_notifications(self, instance_id: int) -> None:
        """Set ``event.notification.enabled`` to false, as a 410 from the receiver asks (D29)."""
        await self.session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(
                configuration=Instance.configuration.op("||")(
                    func.jsonb_build_object("event.notification.enabled", "false")
                ),
                version=Instance.version + 1,
                updated_at=func.now(),
            )
        )

    # -- pollers ----------------------------------------------------------------------------

    async def pollers_of(self, instance_id: int) -> Sequence[EventPoller]:
        stmt = select(EventPoller).where(EventPoller.instance_id == instance_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def add_poller(self, poller: EventPoller) -> None:
        # Two ticks syncing the same instance at once must not fail; the first one wins.
        values = {c.name: getattr(poller, c.key) for c in EventPoller.__table__.columns}
        await self.session.execute(insert(EventPoller).values(values).on_conflict_do_nothing())

    async def remove_pollers(self, instance_id: int, resources: Iterable[str]) -> None:
        names = list(resources)
        if not names:
            return
        await self.session.execute(
            delete(EventPoller).where(
                EventPoller.instance_id == instance_id, EventPoller.resource.in_(names)
            )
        )
        await self.forget_seen(instance_id, names)

    async def poller(
        self, instance_id: int, resource: str, *, for_update: bool = False
    ) -> EventPoller | None:
        stmt = select(EventPoller).where(
            EventPoller.instance_id == instance_id, EventPoller.resource == resource
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def poller_and_instance(
        self, instance_id: int, resource: str
    ) -> tuple[EventPoller, Instance] | None:
        """A poller and its instance as they are now, in one statement."""
        stmt = (
            select(EventPoller, Instance)
            .join(Instance, Instance.id == EventPoller.instance_id)
            .where(EventPoller.instance_id == instance_id, EventPoller.resource == resource)
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def advance_poller(
        self,
        instance_id: int,
        resource: str,
        expected_cursor: datetime,
        at: datetime,
        due: datetime,
    ) -> bool:
        """Record a poll made at ``at`` and its next due time if the poller's cursor is still
        ``expected_cursor``, in one statement that also locks the row; False when another poll
        moved it meanwhile."""
        params = {
            "poller_instance": instance_id,
            "poller_resource": resource,
            "expected_cursor": expected_cursor,
            "polled_at": at,
            "next_due": due,
        }
        return (await self.session.execute(_ADVANCE, params)).first() is not None

    async def due_pollers(
        self, before: datetime, limit: int, lock_prefix: str
    ) -> Sequence[tuple[int, str]]:
        """Pollers due by ``before`` whose poll is neither queued nor running: a tick during a
        long round must not try again to defer the polls still waiting (each a refused
        insert). A poll job's lock and queueing lock are ``lock_prefix`` + instance id + ``:``
        + resource; procrastinate's unique partial indexes on both make each test a probe."""
        lock = func.concat(lock_prefix, EventPoller.instance_id, ":", EventPoller.resource)
        waiting = exists().where(
            or_(
                # Literals, not parameters: they must match the indexes' predicates.
                and_(_JOBS.c.queueing_lock == lock, _JOBS.c.status == literal_column("'todo'")),
                and_(_JOBS.c.lock == lock, _JOBS.c.status == literal_column("'doing'")),
            )
        )
        stmt = (
            select(EventPoller.instance_id, EventPoller.resource)
            .where(EventPoller.next_poll_at <= before, not_(waiting))
            .order_by(EventPoller.next_poll_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    async def make_due(self, instance_id: int, when: datetime) -> int:
        result = await self.session.execute(
            update(EventPoller)
            .where(EventPoller.instance_id == instance_id)
            .values(next_poll_at=when)
            .returning(EventPoller.resource)
        )
        return len(result.all())

    # -- seen-set ---------------------------------------------------------------------------

    async def remember_changed(
        self, instance_id: int, resource: str, digests: Sequence[tuple[str, str]], at: datetime
    ) -> dict[str, bool]:
        """Record the digests of one resource that are new or differ from what was seen;
        answers their object ids, each with whether it was new."""
        seen = [(instance_id, resource, object_id, digest) for object_id, digest in digests]
        changed = await self.remember_seen(seen, at)
        return {object_id: new for (_, _, object_id), new in changed.items()}

    async def remember_seen(
        self, digests: Sequence[tuple[int, str, str, str]], at: datetime
    ) -> dict[tuple[int, str, str], bool]:
        """Record the digests (instance id, resource, object id, digest) that are new or
        differ from what was seen, in one statement; answers their keys, each with whether it
        was new (what was seen already with the same digest is left as it is, and not
        answered). Of a key given twice the last digest counts."""
        latest = {(i, r, o): d for i, r, o, d in digests}
        if not latest:
            return {}
        params = {
            "instance_ids": [key[0] for key in latest],
            "resources": [key[1] for key in latest],
            "object_ids": [key[2] for key in latest],
            "digests": list(latest.values()),
            "at": at,
        }
        rows = await self.session.execute(_REMEMBER, params)
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    # -- vendor event ids (D380) -------------------------------------------------------------

    async def take_vendor_event_ids(
        self, ids: Iterable[tuple[int, str]], at: datetime
    ) -> set[tuple[int, str]]:
        """Record the (instance id, vendor event id) pairs not taken before, in one
        statement; answers those (a concurrent taker of the same id waits for this transaction
        and then finds it taken)."""
        fresh = list(dict.fromkeys(ids))
        if not fresh:
            return set()
        params = {
            "instance_ids": [instance_id for instance_id, _ in fresh],
            "ids": [vendor_id for _, vendor_id in fresh],
            "at": at,
        }
        rows = await self.session.execute(_TAKE_VENDOR_IDS, params)
        return {(row[0], row[1]) for row in rows}

    async def forget_vendor_event_ids(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` ids taken before ``before``, oldest first; answers how many."""
        oldest = (
            select(VendorEventId.instance_id, VendorEventId.vendor_event_id)
            .where(VendorEventId.taken_at < before)
            .order_by(VendorEventId.taken_at)
            .limit(limit)
        )
        stmt = delete(VendorEventId).where(
            tuple_(VendorEventId.instance_id, VendorEventId.vendor_event_id).in_(oldest)
        )
        result = await self.session.execute(stmt.returning(VendorEventId.instance_id))
        return len(result.all())

    async def forget_seen(self, instance_id: int, resources: Sequence[str]) -> None:
        await self.session.execute(
            delete(SeenObject).where(
                SeenObject.instance_id == instance_id, SeenObject.resource.in_(resources)
            )
        )

    # -- events -----------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[NewEvent]) -> set[int]:
        """Insert new events in one statement, leaving them out of the session; answers the
        connector instances among theirs that an active formula instance listens to (D432)."""
        rows = [
            {
                "id": str(e.id),
                "organization_id": e.organization_id,
                "account_id": e.account_id,
                "instance_id": e.instance_id,
                "user_id": e.user_id,
                "instance_name": e.instance_name,
                "element_key": e.element_key,
                "source": e.source,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "event_type": e.event_type,
                "events": e.events,
                "raw": e.raw,
                "event_date": e.event_date.isoformat(),
            }
            for e in events
        ]
        params = {"status": NEW, "rows": json.dumps(rows)}
        return set((await self.session.execute(_ADD_LISTENED, params)).scalars())

    async def claim(
        self, event_id: uuid.UUID, *, due: datetime, until: datetime, owner: int
    ) -> tuple[Event, Instance] | None:
        """Take the event's delivery lease when it is due (or already ours), and read its
        instance, in one statement. The returned objects are detached copies."""
        params = {"event_id": event_id, "due": due, "until": until, "owner": owner}
        row = (await self.session.execute(_CLAIM, params)).first()
        if row is None:
            return None
        values = row._mapping
        event = Event(**{c.key: values[c] for c in _EVENTS.c})
        instance = Instance(**{c.key: values[label] for c, label in _INSTANCE_LABELS})
        return event, instance

    async def settle(
        self, attempt: dict[str, Any], event_id: uuid.UUID, owner: int, outcome: dict[str, Any]
    ) -> bool:
        """Record an attempt and, if ``owner`` still holds the lease, its outcome, in one
        statement; False when the lease was lost (a redelivery took the event over)."""
        params = {"event_id": event_id, "owner": owner, **attempt, **outcome}
        return (await self.session.execute(_SETTLE, params)).first() is not None

    async def claim_batch(
        self, *, due: datetime, until: datetime, owner: int, reclaim: bool, limit: int
    ) -> list[tuple[Event, Instance]]:
        """Lease up to ``limit`` due notifications (and, with ``reclaim``, those ``owner``
        holds already) and read their instances, in one statement; detached copies."""
        params = {
            "due": due,
            "until": until,
            "owner": owner,
            "reclaim": owner if reclaim else None,
            "limit": limit,
        }
        claimed = []
        for row in await self.session.execute(_CLAIM_BATCH, params):
            values = row._mapping
            event = Event(**{c.key: values[c] for c in _EVENTS.c})
            instance = Instance(**{c.key: values[label] for c, label in _INSTANCE_LABELS})
            claimed.append((event, instance))
        return claimed

    async def settle_batch(self, owner: int, settled: Sequence[Settled]) -> set[uuid.UUID]:
        """Record a batch's attempts and outcomes in one statement; answers the events whose
        lease ``owner`` still held (the others were taken over by a redelivery)."""
        if not settled:
            return set()
        attempts = [s.attempt or {} for s in settled]
        params = {
            "owner": owner,
            "ids": [s.event_id for s in settled],
            "tried": [s.attempt is not None for s in settled],
            "statuses": [s.status for s in settled],
            "attempts": [s.attempts for s in settled],
            "next_attempts": [s.next_attempt for s in settled],
            "notified": [s.notified for s in settled],
            "reasons": [s.reason for s in settled],
            "attempted_at": [a.get("attempted_at") for a in attempts],
            "status_codes": [a.get("status_code") for a in attempts],
            "latencies": [a.get("latency_ms") for a in attempts],
            "responses": [a.get("response") for a in attempts],
            "errors": [a.get("error") for a in attempts],
        }
        result = await self.session.execute(_SETTLE_BATCH, params)
        return {row[0] for row in result}

    async def overdue(self, before: datetime, limit: int) -> Sequence[uuid.UUID]:
        stmt = (
            select(Event.id)
            .where(Event.status.in_(PENDING_STATUSES), Event.next_attempt_at <= before)
            .order_by(Event.next_attempt_at)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def fail(self, event_id: uuid.UUID, reason: str) -> None:
        await self.session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(status=FAILED, failure_reason=reason, leased_by=None)
        )

    async def fail_pending(self, instance_id: int, reason: str) -> None:
        await self.session.execute(
            update(Event)
            .where(Event.instance_id == instance_id, Event.status.in_(PENDING_STATUSES))
            .values(status=FAILED, failure_reason=reason)
        )

    # -- tenant-facing reads ----------------------------------------------------------------

    async def list_events(
        self,
        *,
        tenant: Tenant | None,
        instance_id: int | None,
        status: str | None,
        offset: int,
        limit: int,
    ) -> Sequence[Event]:
        """Newest first; ``tenant`` None only for callers that resolved the instance already."""
        stmt = select(Event)
        if tenant is not None:
            stmt = scoped(stmt, Event, tenant)
        if instance_id is not None:
            stmt = stmt.where(Event.instance_id == instance_id)
        if status is not None:
            stmt = stmt.where(Event.status == status)
        stmt = stmt.order_by(Event.seq.desc()).offset(offset).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def find_event(
        self, event_id: uuid.UUID, *, tenant: Tenant | None, instance_id: int | None
    ) -> Event | None:
        stmt = select(Event).where(Event.id == event_id)
        if tenant is not None:
            stmt = scoped(stmt, Event, tenant)
        if instance_id is not None:
            stmt = stmt.where(Event.instance_id == instance_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def attempts(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[EventAttempt]]:
        found: dict[uuid.UUID, list[EventAttempt]] = {event_id: [] for event_id in event_ids}
        if not event_ids:
            return found
        stmt = (
            select(EventAttempt)
            .where(EventAttempt.event_id.in_(event_ids))
            .order_by(EventAttempt.event_id, EventAttempt.id)
        )
        for attempt in (await self.session.execute(stmt)).scalars():
            found[attempt.event_id].append(attempt)
        return found

    async def status_rows(
        self, *, tenant: Tenant | None, instance_id: int | None = None
    ) -> list[StatusRow]:
        """Per instance with events enabled or events on record: pollers and delivery counts."""
        counted = select(
            Event.instance_id.label("instance_id"),
            func.count().filter(Event.status.in_(PENDING_STATUSES)).label("pending"),
            func.count().filter(Event.status == FAILED).label("failed"),
            func.count().filter(Event.status == "NOTIFIED").label("notified"),
        ).group_by(Event.instance_id)
        # Counted for the instances asked about only: events are the largest table.
        if tenant is not None:
            counted = counted.where(
                Event.instance_id.in_(scoped(select(Instance.id), Instance, tenant))
            )
        if instance_id is not None:
            counted = counted.where(Event.instance_id == instance_id)
        counts = counted.subquery()
        pollers = (
            select(
                EventPoller.instance_id.label("instance_id"),
                func.max(EventPoller.last_poll_at).label("last_poll_at"),
                func.min(EventPoller.next_poll_at).label("next_poll_at"),
                func.max(EventPoller.last_error).label("last_error"),
                func.sum(EventPoller.polls).label("polls"),
            )
            .group_by(EventPoller.instance_id)
            .subquery()
        )
        stmt = (
            select(
                Instance.id,
                Instance.name,
                Instance.organization_id,
                Instance.element_key,
                events_enabled(),
                func.coalesce(_setting("event.vendor.type"), "polling"),
                pollers.c.last_poll_at,
                pollers.c.next_poll_at,
                pollers.c.last_error,
                func.coalesce(pollers.c.polls, 0),
                func.coalesce(counts.c.pending, 0),
                func.coalesce(counts.c.failed, 0),
                func.coalesce(counts.c.notified, 0),
            )
            .outerjoin(counts, counts.c.instance_id == Instance.id)
            .outerjoin(pollers, pollers.c.instance_id == Instance.id)
            .where(or_(events_enabled(), counts.c.instance_id.is_not(None)))
            .order_by(Instance.id)
        )
        if tenant is not None:
            stmt = scoped(stmt, Instance, tenant)
        if instance_id is not None:
            stmt = stmt.where(Instance.id == instance_id)
        return [StatusRow(*row) for row in await self.session.execute(stmt)]
