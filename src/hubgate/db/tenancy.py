"""The one place that decides which rows a tenant may see (D4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ForeignKey, Select, or_
from sqlalchemy.orm import Mapped, mapped_column

S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True)
class Tenant:
    """Who is asking: users of one account share that account's objects."""

    organization_id: int
    account_id: int
    user_id: int
    email: str


class TenantOwned:
    """Columns of every table whose rows belong to one account of one organization."""

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )


class OrganizationShared:
    """Columns of a table whose rows an organization shares with all its accounts (no
    account) or keeps for one account: a tenant sees its organization's and its own."""

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=True
    )


def scoped(stmt: S, model: type[TenantOwned] | type[OrganizationShared], tenant: Tenant) -> S:
    if issubclass(model, OrganizationShared):
        return stmt.where(
            model.organization_id == tenant.organization_id,
            or_(model.account_id.is_(None), model.account_id == tenant.account_id),
        )
    return stmt.where(
        model.organization_id == tenant.organization_id,
        model.account_id == tenant.account_id,
    )
