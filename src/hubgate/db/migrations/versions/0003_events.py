"""events: the job engine's schema, event records, attempts, pollers and the seen-set

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def _procrastinate_objects(kind: str) -> list[str]:
    return re.findall(rf"^CREATE {kind} (\w+)", SchemaManager.get_schema(), flags=re.M)


def upgrade() -> None:
    # The job engine lives in Hubgate's own database (architecture.md: jobs). Its schema is
    # the one of the pinned procrastinate (3.10); a procrastinate upgrade needs a revision
    # that applies procrastinate's own migration files. Sent through the driver without
    # parameters so that psycopg runs the whole script and leaves its % signs alone.
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())
    # The job table churns, and procrastinate's fetch plans badly on stale statistics:
    # measured here, 150 ms per fetch with 2,000 queued jobs that carry locks right after a
    # burst, 2 ms once the table is analyzed. Analyze it after small changes, not 10%.
    op.execute(
        "ALTER TABLE procrastinate_jobs SET (autovacuum_analyze_scale_factor = 0.02,"
        " autovacuum_analyze_threshold = 100)"
    )
    op.create_table(
        "event_pollers",
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("resource", sa.String(length=100), nullable=False),
        sa.Column("instance_version", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("id_field", sa.String(length=100), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("poll_delay_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("primed", sa.Boolean(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("polls", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_event_pollers_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "resource", name=op.f("pk_event_pollers")),
    )
    op.create_index(
        op.f("ix_event_pollers_next_poll_at"), "event_pollers", ["next_poll_at"], unique=False
    )
    op.create_table(
        "event_seen",
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("resource", sa.String(length=100), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_event_seen_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "resource", "object_id", name=op.f("pk_event_seen")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("instance_name", sa.String(length=200), nullable=False),
        sa.Column("element_key", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("object_type", sa.String(length=100), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("event_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_by", sa.BigInteger(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_events_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        postgresql_with={"fillfactor": "80"},
    )
    op.create_index("ix_events_account_seq", "events", ["account_id", "seq"], unique=False)
    op.create_index("ix_events_instance_seq", "events", ["instance_id", "seq"], unique=False)
    op.create_index(op.f("ix_events_organization_id"), "events", ["organization_id"], unique=False)
    op.create_index(
        "ix_events_pending",
        "events",
        ["instance_id"],
        unique=False,
        postgresql_where="status IN ('NEW', 'DISPATCHED')",
    )
    op.create_table(
        "event_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_attempts_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attempts")),
    )
    op.create_index(
        op.f("ix_event_attempts_event_id"), "event_attempts", ["event_id"], unique=False
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(op.f("ix_event_attempts_event_id"), table_name="event_attempts")
    op.drop_table("event_attempts")
    op.drop_index(
        "ix_events_pending", table_name="events", postgresql_where="status IN ('NEW', 'DISPATCHED')"
    )
    op.drop_index(op.f("ix_events_organization_id"), table_name="events")
    op.drop_index("ix_events_instance_seq", table_name="events")
    op.drop_index("ix_events_account_seq", table_name="events")
    op.drop_table("events")
    op.drop_table("event_seen")
    op.drop_index(op.f("ix_event_pollers_next_poll_at"), table_name="event_pollers")
    op.drop_table("event_pollers")
    # ### end Alembic commands ###
    for table in _procrastinate_objects("TABLE"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in _procrastinate_objects("FUNCTION"):
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for kind in _procrastinate_objects("TYPE"):
        op.execute(f"DROP TYPE IF EXISTS {kind} CASCADE")
