"""All SQL of the console: its sessions. Instances are read through the instances package."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.models import ConsoleSession
from hubgate.tenants.models import User


class ConsoleSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: ConsoleSession) -> None:
        self.session.add(row)
        await self.session.flush()

    async def live(self, id_hash: str, now: datetime) -> tuple[ConsoleSession, User] | None:
        stmt = (
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)
            .where(ConsoleSession.id_hash == id_hash, ConsoleSession.expires_at > now)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def remove(self, id_hash: str) -> None:
        await self.session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))

    async def remove_expired(self, now: datetime) -> None:
        await self.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
