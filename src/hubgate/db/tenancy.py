"""The one place that decides which rows a tenant may see (D4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ForeignKey, Select
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


def scoped(stmt: S, model: type[TenantOwned], tenant: Tenant) -> S:
    return stmt.where(
        model.organization_id == tenant.organization_id,
        model.account_id == tenant.account_id,
    )
