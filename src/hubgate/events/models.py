"""Events: what a poll has seen, where each poller is, and the notifications owed (D28-D30)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base
from hubgate.db.tenancy import TenantOwned

# D30 statuses. NEW: not tried yet; DISPATCHED: tried, a retry is scheduled; NOTIFIED: the
# receiver answered 2xx; FAILED: given up (last attempt spent, 410, or notifications off).
NEW = "NEW"
DISPATCHED = "DISPATCHED"
NOTIFIED = "NOTIFIED"
FAILED = "FAILED"
PENDING_STATUSES = (NEW, DISPATCHED)


class EventPoller(Base):
    """One polled resource of one instance: its settings as last synced, and its cursor."""

    __tablename__ = "event_pollers"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(100), primary_key=True)
    # The instance version these settings were read from; a newer one means "sync again".
    instance_version: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    id_field: Mapped[str] = mapped_column(String(100))
    interval_minutes: Mapped[int] = mapped_column(Integer)
    poll_delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    enabled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The moment the next poll's URL is filled with: the start of the last committed poll.
    cursor_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # False until the first poll has recorded what already existed (no backfill).
    primed: Mapped[bool] = mapped_column(Boolean, default=False)
    next_poll_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(BigInteger, default=0)


class SeenObject(Base):
    """The seen-set: a digest of each object's content, to tell CREATED, UPDATED and unchanged."""

    __tablename__ = "event_seen"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(100), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VendorEventId(Base):
    """A vendor's event id already taken from one instance's webhook (D380): a retry of it,
    even after later events of the same object, gives nothing. Kept a day (Slack retries for
    minutes), then swept by the tick."""

    __tablename__ = "event_vendor_ids"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    vendor_event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Event(TenantOwned, Base):
    """One notification (D29) and its record (D30): up to 10 object events, delivered as one."""

    __tablename__ = "events"
    # Every delivery updates its row twice (lease, outcome). Few indexes, none on the lease
    # columns, and room on each page let the lease be a HOT update (no index writes):
    # measured, PostgreSQL's CPU per delivery fell by a third.
    __table_args__ = (
        Index("ix_events_instance_seq", "instance_id", "seq"),
        Index("ix_events_account_seq", "account_id", "seq"),
        # The sweep's: undelivered events are few unless receivers are down.
        Index(
            "ix_events_pending", "instance_id", postgresql_where="status IN ('NEW', 'DISPATCHED')"
        ),
        {"postgresql_with": {"fillfactor": "80"}},
    )

    # Declared again without the mixin's index: ix_events_account_seq serves it.
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Creation order, for listing and paging; ids are random so that they can be shown.
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    instance_name: Mapped[str] = mapped_column(String(200))
    element_key: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    # The first object event, which is all of it in the common case of one change.
    object_type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(16))
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    event_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    # Attempts in the current run of the retry schedule; a redelivery starts a new run.
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # While an attempt is in flight: when its lease ends, and who holds it (the job's id).
    # A second job for the same event finds the lease and does not send (D29: one POST of an
    # event at a time); a holder that dies loses it when it ends, and the sweep sends again.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leased_by: Mapped[int | None] = mapped_column(BigInteger)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)


class EventAttempt(Base):
    """One POST to the callback URL and what came back."""

    __tablename__ = "event_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    response: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
