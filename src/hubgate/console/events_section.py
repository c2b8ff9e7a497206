"""The instance page's events section (D30): its newest notifications and how they fared."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.sections import InstanceSection, add_instance_section
from hubgate.db.tenancy import Tenant
from hubgate.events.repository import EventRepository
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime

# The newest only: the API's /instances/{id}/events pages through the rest.
SHOWN = 20


async def load(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, instance: Instance
) -> dict[str, Any]:
    events = await EventRepository(session).list_events(
        tenant=tenant, instance_id=instance.id, status=None, offset=0, limit=SHOWN
    )
    configuration = instance.configuration
    return {
        "enabled": configuration.get("event.notification.enabled") == "true",
        "vendor_type": configuration.get("event.vendor.type") or "polling",
        "shown": SHOWN,
        "entries": [
            {
                "when": e.event_date.strftime("%Y-%m-%d %H:%M:%S"),
                "object": f"{e.object_type} {e.object_id}",
                "type": e.event_type,
                "status": e.status,
                "id": str(e.id),
            }
            for e in events
        ],
    }


def register() -> None:
    add_instance_section(InstanceSection(key="events", template="sections/events.html", load=load))
