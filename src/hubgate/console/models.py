"""A signed-in browser: the console's server-side session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base, Timestamped
from hubgate.db.tenancy import TenantOwned


class ConsoleSession(TenantOwned, Timestamped, Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # HMAC-SHA256 of the id in the cookie: a copy of this table signs nobody in.
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
