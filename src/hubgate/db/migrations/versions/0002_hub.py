"""hub: trace logs, audit logs, instance change notifications

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tenant_columns(table: str) -> list[Any]:
    return [
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f(f"fk_{table}_account_id_accounts"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "hub_logs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("vendor_url", sa.Text(), nullable=True),
        sa.Column("request_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        *_tenant_columns("hub_logs"),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_hub_logs_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_logs")),
    )
    op.create_index("ix_hub_logs_instance_id_id", "hub_logs", ["instance_id", "id"])
    op.create_index(op.f("ix_hub_logs_organization_id"), "hub_logs", ["organization_id"])
    op.create_index(op.f("ix_hub_logs_account_id"), "hub_logs", ["account_id"])
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        *_tenant_columns("audit_logs"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_logs_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    op.create_index("ix_audit_logs_account_id_id", "audit_logs", ["account_id", "id"])
    op.create_index(op.f("ix_audit_logs_organization_id"), "audit_logs", ["organization_id"])
    op.create_index(op.f("ix_audit_logs_account_id"), "audit_logs", ["account_id"])
    # Every process keeps resolved Element tokens in memory; this tells all of them at once
    # when an instance changes or goes (the payload is the token's lookup hash).
    op.execute(
        """
        CREATE FUNCTION hubgate_instance_changed() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('hubgate_instances', OLD.token_hash);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER instances_changed AFTER UPDATE OR DELETE ON instances
        FOR EACH ROW EXECUTE FUNCTION hubgate_instance_changed()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER instances_changed ON instances")
    op.execute("DROP FUNCTION hubgate_instance_changed()")
    op.drop_table("audit_logs")
    op.drop_table("hub_logs")
