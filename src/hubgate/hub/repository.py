"""All SQL of the hub: trace logs and audit logs, tenant-scoped through ``scoped``, and the
change notifications other processes listen to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant, scoped
from hubgate.hub.models import AuditLog, HubLog
from hubgate.instances.changes import CHANNEL


class LogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def notify(self, payload: str) -> None:
        """Tell every process listening on the instance channel (delivered at commit)."""
        await self.session.execute(select(func.pg_notify(CHANNEL, payload)))

    async def add(self, entry: HubLog | AuditLog) -> None:
        self.session.add(entry)
        await self.session.flush()

    async def hub_logs(
        self, tenant: Tenant, instance_id: int, *, offset: int, limit: int
    ) -> Sequence[HubLog]:
        stmt = (
            scoped(select(HubLog), HubLog, tenant)
            .where(HubLog.instance_id == instance_id)
            .order_by(HubLog.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def audit_logs(self, tenant: Tenant, *, offset: int, limit: int) -> Sequence[AuditLog]:
        stmt = (
            scoped(select(AuditLog), AuditLog, tenant)
            .order_by(AuditLog.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()
