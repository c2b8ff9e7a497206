"""What the hub keeps: trace logs of hub calls and the audit log of platform calls (D27)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base
from hubgate.db.tenancy import TenantOwned


class HubLog(TenantOwned, Base):
    """One hub call of an instance with trace logging on; bodies are stored redacted."""

    __tablename__ = "hub_logs"
    __table_args__ = (Index("ix_hub_logs_instance_id_id", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    request_id: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    vendor_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_body: Mapped[Any] = mapped_column(JSONB, nullable=True)
    response_body: Mapped[Any] = mapped_column(JSONB, nullable=True)


class AuditLog(TenantOwned, Base):
    """One platform call (anything but a hub call) made with a tenant's credentials."""

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    request_id: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
