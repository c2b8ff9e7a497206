"""vendor event ids taken from webhooks, so that a vendor's retry gives nothing (D380)

Revision ID: 0010
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_vendor_ids",
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("vendor_event_id", sa.String(length=255), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_event_vendor_ids_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "vendor_event_id", name=op.f("pk_event_vendor_ids")),
    )
    # The sweep's: the ids older than a day, oldest first.
    op.create_index(
        op.f("ix_event_vendor_ids_taken_at"), "event_vendor_ids", ["taken_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_event_vendor_ids_taken_at"), table_name="event_vendor_ids")
    op.drop_table("event_vendor_ids")
