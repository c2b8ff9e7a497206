"""Console sign-in: server-side sessions and the CSRF tokens bound to them; no SQL, no commit.

The cookie holds a random id; the table keeps only its HMAC under the server key, so neither
a database copy nor a log line can be replayed as a sign-in. Every form carries a CSRF token
derived from the session id with the same key: it needs no storage, differs per session and
cannot be computed from anything a page or the database exposes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.models import ConsoleSession
from hubgate.console.repository import ConsoleSessionRepository
from hubgate.db.tenancy import Tenant
from hubgate.kit.crypto import Keyring
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user

SESSION_COOKIE = "hubgate_session"
# Before sign-in there is no session to bind a token to, so the sign-in form pairs its
# token with a random value in this short-lived cookie instead (login CSRF).
SIGNIN_COOKIE = "hubgate_signin"
CSRF_FIELD = "csrf_token"
# Longer values are not ids we issued; refusing them early keeps hashing cheap.
_MAX_COOKIE_LENGTH = 100


@dataclass(frozen=True)
class ConsoleUser:
    """Who is signed in, and the token their forms must carry."""

    tenant: Tenant
    id_hash: str
    csrf_token: str

    @property
    def email(self) -> str:
        return self.tenant.email


def now() -> datetime:
    return datetime.now(UTC)


def csrf_token(keyring: Keyring, session_id: str) -> str:
    return keyring.hmac_digest(f"console-csrf:{session_id}")


def signin_token(keyring: Keyring, nonce: str) -> str:
    return keyring.hmac_digest(f"console-signin:{nonce}")


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(expected.encode(), given.encode())


async def sign_in(
    session: AsyncSession, runtime: Runtime, *, user_secret: str, organization_secret: str
) -> str:
    """A new session for the user these secrets name (the D8 401 otherwise); its cookie value."""
    credentials = Credentials(
        user=user_secret.strip() or None, organization=organization_secret.strip() or None
    )
    tenant = await authenticate_user(session, runtime.keyring, credentials)
    moment = now()
    repo = ConsoleSessionRepository(session)
    # Sign-ins are rare enough to carry the clean-up of sessions nobody will use again.
    await repo.remove_expired(moment)
    session_id = new_nonce()
    await repo.add(
        ConsoleSession(
            organization_id=tenant.organization_id,
            account_id=tenant.account_id,
            user_id=tenant.user_id,
            id_hash=runtime.keyring.hmac_digest(session_id),
            expires_at=moment + timedelta(minutes=runtime.settings.console_session_minutes),
        )
    )
    return session_id


async def resolve(
    session: AsyncSession, keyring: Keyring, session_id: str | None
) -> ConsoleUser | None:
    if not session_id or len(session_id) > _MAX_COOKIE_LENGTH:
        return None
    id_hash = keyring.hmac_digest(session_id)
    found = await ConsoleSessionRepository(session).live(id_hash, now())
    if found is None:
        return None
    row, user = found
    tenant = Tenant(
        organization_id=row.organization_id,
        account_id=row.account_id,
        user_id=row.user_id,
        email=user.email,
    )
    return ConsoleUser(tenant=tenant, id_hash=id_hash, csrf_token=csrf_token(keyring, session_id))


async def sign_out(session: AsyncSession, user: ConsoleUser) -> None:
    await ConsoleSessionRepository(session).remove(user.id_hash)
