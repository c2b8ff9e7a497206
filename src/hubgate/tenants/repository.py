"""All SQL about organizations, accounts and users."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.tenants.models import Account, Organization, User


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_organization(self, name: str, secret_hash: str) -> Organization:
        organization = Organization(name=name, secret_hash=secret_hash)
        self.session.add(organization)
        await self.session.flush()
        return organization

    async def add_account(self, organization_id: int, name: str, *, default: bool) -> Account:
        account = Account(
            organization_id=organization_id, name=name, external_id=name, default_account=default
        )
        self.session.add(account)
        await self.session.flush()
        return account

    async def add_user(
        self,
        account: Account,
        email: str,
        secret_hash: str,
        *,
        first_name: str = "",
        last_name: str = "",
    ) -> User:
        user = User(
            organization_id=account.organization_id,
            account_id=account.id,
            email=email,
            first_name=first_name,
            last_name=last_name,
            secret_hash=secret_hash,
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def user_with_organization(
        self, user_secret_hash: str
    ) -> tuple[User, Organization] | None:
        stmt = (
            select(User, Organization)
            .join(Organization, Organization.id == User.organization_id)
            .where(User.secret_hash == user_secret_hash)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def user(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def count_organizations(self) -> int:
        return int((await self.session.execute(select(func.count(Organization.id)))).scalar_one())
