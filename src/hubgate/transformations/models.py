"""Object definitions and transformations as stored, at organization, account or instance level.

A row belongs to one level's owner (``owner_id``: the organization, the account or the
instance); organization rows have no account, so every account of the organization sees them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hubgate.db.base import Base, Timestamped
from hubgate.db.tenancy import OrganizationShared


class ObjectDefinition(OrganizationShared, Timestamped, Base):
    __tablename__ = "object_definitions"
    __table_args__ = (UniqueConstraint("organization_id", "level", "owner_id", "object_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True, nullable=True
    )
    level: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    object_name: Mapped[str] = mapped_column(String(200))
    # [{"path", "type"}, ...] as posted.
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)


class StoredTransformation(OrganizationShared, Timestamped, Base):
    __tablename__ = "transformations"
    __table_args__ = (
        UniqueConstraint("organization_id", "level", "owner_id", "element_key", "object_name"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True, nullable=True
    )
    level: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    element_key: Mapped[str] = mapped_column(String(100))
    object_name: Mapped[str] = mapped_column(String(200))
    # The wire body (vendorName, fields, configuration, script, isLegacy), checked by
    # mapping.parse_transformation before it is stored.
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
