"""Formula templates, formula instances, executions, step executions and their values.

A template's triggers, steps and configuration live in one JSON body (``body``), checked by
``template.check`` before it is stored; ``version`` counts its writes, and each execution keeps
the body it started with (D44), so editing a template never changes a running execution.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base, Timestamped
from hubgate.db.tenancy import TenantOwned

QUEUED = "queued"
PENDING = "pending"
SUCCESS = "success"
FAILED = "failed"
RETRY = "retry"
CANCELLED = "cancelled"
FINISHED = frozenset({SUCCESS, FAILED, RETRY, CANCELLED})


class Formula(TenantOwned, Timestamped, Base):
    __tablename__ = "formulas"
    # Timestamps come back with the INSERT or UPDATE (RETURNING), ready for the answer.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # {description, configuration[], triggers[], steps[], nextId} as checked by template.check.
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class FormulaInstance(TenantOwned, Timestamped, Base):
    __tablename__ = "formula_instances"
    __mapper_args__ = {"eager_defaults": True}
    # Event triggers find the formula instances of a connector instance by containment.
    __table_args__ = (
        Index(
            "ix_formula_instances_element_instance_ids",
            "element_instance_ids",
            postgresql_using="gin",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    formula_id: Mapped[int] = mapped_column(
        ForeignKey("formulas.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Configuration values by key: an instance id (elementInstance) or a value, all strings.
    configuration: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Connector instances the configuration names, for event triggers and the filter (D330).
    element_instance_ids: Mapped[list[int]] = mapped_column(JSONB, default=list)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    deactivation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A scheduled trigger's last fire time taken (D335): the tick fires each later one once.
    schedule_cursor: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Execution(TenantOwned, Timestamped, Base):
    __tablename__ = "formula_executions"
    # Timestamps come back with the INSERT or UPDATE (RETURNING), ready for the answer.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    formula_instance_id: Mapped[int] = mapped_column(
        ForeignKey("formula_instances.id", ondelete="CASCADE"), index=True
    )
    formula_id: Mapped[int] = mapped_column(BigInteger)
    template_version: Mapped[int] = mapped_column(Integer)
    # The template as it was when the execution started (D44).
    template: Mapped[dict[str, Any]] = mapped_column(JSONB)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED, index=True)
    # The engine's state: {"steps": {...}, "pending": [...], "loops": {...}, "tries": n, ...}.
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Step runs committed so far: job n runs the n-th one, a stale job finds it taken.
    position: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    object_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    parent_execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("formula_executions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    parent_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_execution_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class StepExecution(Base):
    __tablename__ = "formula_step_executions"
    # One committed result per step run: a step repeated after a crash cannot be stored twice.
    __table_args__ = (UniqueConstraint("execution_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("formula_executions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Reused from an earlier execution by a replay (D44), not run again.
    reused: Mapped[bool] = mapped_column(Boolean, default=False)
    # The engine's context just before this run: what a replay from here starts from (D44).
    context_before: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StepValue(Base):
    __tablename__ = "formula_step_values"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    step_execution_id: Mapped[int] = mapped_column(
        ForeignKey("formula_step_executions.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
