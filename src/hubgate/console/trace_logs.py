"""The instance page's trace log section (D27), read from the hub's log store."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.sections import InstanceSection, add_instance_section
from hubgate.db.tenancy import Tenant
from hubgate.hub.repository import LogRepository
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime

# The newest calls only: the API's /instances/{id}/logs pages through the rest.
SHOWN = 20


async def load(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, instance: Instance
) -> dict[str, Any]:
    entries = await LogRepository(session).hub_logs(tenant, instance.id, offset=0, limit=SHOWN)
    return {
        "enabled": instance.trace_logging_enabled,
        "shown": SHOWN,
        "entries": [
            {
                "when": e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "latency": f"{e.latency_ms:.0f} ms",
            }
            for e in entries
        ],
    }


def register() -> None:
    add_instance_section(
        InstanceSection(key="trace-logs", template="sections/trace_logs.html", load=load)
    )
