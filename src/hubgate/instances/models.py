"""A connector instance: one tenant's configured, authenticated use of an element."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base, Timestamped
from hubgate.db.tenancy import TenantOwned


class Instance(TenantOwned, Timestamped, Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    element_key: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Non-secret configuration values, every one a string or null (D14).
    configuration: Mapped[dict[str, str | None]] = mapped_column(JSONB, default=dict)
    # Secret configuration values as envelope ciphertexts bound to this row and key.
    secrets: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_ciphertext: Mapped[str] = mapped_column(Text)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    caching_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    cache_time_to_live: Mapped[int] = mapped_column(Integer, default=0)
    max_cache_size: Mapped[int] = mapped_column(Integer, default=0)
    trace_logging_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every change so that in-process caches keyed by token can tell they are stale.
    version: Mapped[int] = mapped_column(Integer, default=1)
