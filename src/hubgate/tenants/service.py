"""Creating tenants and telling who a request comes from; no SQL, no commit."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.kit.crypto import Keyring, new_org_secret, new_secret
from hubgate.kit.errors import unauthorized
from hubgate.tenants.auth import Credentials
from hubgate.tenants.repository import TenantRepository


@dataclass(frozen=True)
class CreatedTenant:
    """A new organization with its default account and first user, secrets in clear once."""

    organization_id: int
    organization_name: str
    organization_secret: str
    account_id: int
    account_name: str
    user_id: int
    user_email: str
    user_secret: str
    user_first_name: str = ""
    user_last_name: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "organization": {
                "id": self.organization_id,
                "name": self.organization_name,
                "secret": self.organization_secret,
            },
            "account": {"id": self.account_id, "name": self.account_name},
            "user": {
                "id": self.user_id,
                "email": self.user_email,
                "firstName": self.user_first_name,
                "lastName": self.user_last_name,
                "secret": self.user_secret,
            },
        }


async def create_organization(
    session: AsyncSession,
    keyring: Keyring,
    *,
    name: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
) -> CreatedTenant:
    repo = TenantRepository(session)
    org_secret = new_org_secret()
    user_secret = new_secret()
    organization = await repo.add_organization(name, keyring.hmac_digest(org_secret))
    account = await repo.add_account(organization.id, name, default=True)
    user = await repo.add_user(
        account, email, keyring.hmac_digest(user_secret), first_name=first_name, last_name=last_name
    )
    return CreatedTenant(
        organization_id=organization.id,
        organization_name=organization.name,
        organization_secret=org_secret,
        account_id=account.id,
        account_name=account.name,
        user_id=user.id,
        user_email=user.email,
        user_secret=user_secret,
        user_first_name=user.first_name,
        user_last_name=user.last_name,
    )


async def authenticate_user(
    session: AsyncSession, keyring: Keyring, credentials: Credentials
) -> Tenant:
    """The tenant of a ``User``/``Organization`` pair, or the D8 401."""
    if credentials.user is None or credentials.organization is None:
        raise unauthorized()
    found = await TenantRepository(session).user_with_organization(
        keyring.hmac_digest(credentials.user)
    )
    org_digest = keyring.hmac_digest(credentials.organization)
    if found is None or not hmac.compare_digest(found[1].secret_hash, org_digest):
        raise unauthorized()
    user, _ = found
    return Tenant(
        organization_id=user.organization_id,
        account_id=user.account_id,
        user_id=user.id,
        email=user.email,
    )
