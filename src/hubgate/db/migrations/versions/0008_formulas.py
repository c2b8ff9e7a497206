"""formula templates, formula instances, executions, step executions and values

Revision ID: 0008
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[Any]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def _tenant(table: str) -> list[Any]:
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


def _tenant_indexes(table: str) -> None:
    for column in ("organization_id", "account_id"):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "formulas",
        sa.Column("id", sa.BigInteger(), nullable=False),
        *_tenant("formulas"),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_formulas_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formulas")),
    )
    _tenant_indexes("formulas")
    op.create_table(
        "formula_instances",
        sa.Column("id", sa.BigInteger(), nullable=False),
        *_tenant("formula_instances"),
        sa.Column("formula_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("configuration", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("element_instance_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivation_reason", sa.Text(), nullable=True),
        sa.Column("schedule_cursor", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["formula_id"],
            ["formulas.id"],
            name=op.f("fk_formula_instances_formula_id_formulas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_formula_instances_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formula_instances")),
    )
    _tenant_indexes("formula_instances")
    op.create_index(op.f("ix_formula_instances_formula_id"), "formula_instances", ["formula_id"])
    # Event triggers find the formula instances of a connector instance by containment.
    op.create_index(
        "ix_formula_instances_element_instance_ids",
        "formula_instances",
        ["element_instance_ids"],
        postgresql_using="gin",
    )
    op.create_table(
        "formula_executions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        *_tenant("formula_executions"),
        sa.Column("formula_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("formula_id", sa.BigInteger(), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("template", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("trigger", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("object_id", sa.String(length=200), nullable=True),
        sa.Column("parent_execution_id", sa.BigInteger(), nullable=True),
        sa.Column("parent_position", sa.Integer(), nullable=True),
        sa.Column("origin_execution_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["formula_instance_id"],
            ["formula_instances.id"],
            name=op.f("fk_formula_executions_formula_instance_id_formula_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_execution_id"],
            ["formula_executions.id"],
            name=op.f("fk_formula_executions_parent_execution_id_formula_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formula_executions")),
    )
    _tenant_indexes("formula_executions")
    for column in ("formula_instance_id", "status", "event_id", "parent_execution_id"):
        op.create_index(op.f(f"ix_formula_executions_{column}"), "formula_executions", [column])
    op.create_table(
        "formula_step_executions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("execution_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.Column("context_before", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["formula_executions.id"],
            name=op.f("fk_formula_step_executions_execution_id_formula_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formula_step_executions")),
        sa.UniqueConstraint(
            "execution_id", "position", name=op.f("uq_formula_step_executions_execution_id")
        ),
    )
    op.create_index(
        op.f("ix_formula_step_executions_execution_id"),
        "formula_step_executions",
        ["execution_id"],
    )
    op.create_table(
        "formula_step_values",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("step_execution_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["step_execution_id"],
            ["formula_step_executions.id"],
            name=op.f("fk_formula_step_values_step_execution_id_formula_step_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_formula_step_values")),
    )
    op.create_index(
        op.f("ix_formula_step_values_step_execution_id"),
        "formula_step_values",
        ["step_execution_id"],
    )


def downgrade() -> None:
    for table in (
        "formula_step_values",
        "formula_step_executions",
        "formula_executions",
        "formula_instances",
        "formulas",
    ):
        op.drop_table(table)
