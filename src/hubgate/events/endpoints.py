"""Event records (D30), redelivery (D29), event status, and vendor webhooks (D31): routes only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.deps import CredentialsDep, RuntimeDep, SessionDep, TenantDep
from hubgate.events import fastintake, service, tasks
from hubgate.events.models import Event
from hubgate.events.repository import EventRepository
from hubgate.events.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, event_json
from hubgate.hub.paging import page_numbers
from hubgate.instances.service import by_token, get_owned
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user

router = APIRouter(tags=["events"])

Json = dict[str, Any]
# Read as text and capped like the hub's lists (hub.paging): a page size above the cap is the
# cap, whatever its number of digits.
# cap, whatever its number of digits. The pattern is documented, not enforced here, so that a
# wrong value gets page_numbers' message rather than the schema's.
_DIGITS = {"pattern": "^[0-9]*$"}
PageQuery = Annotated[
    str | None, Query(description="From 1; empty means 1", json_schema_extra=_DIGITS)
]
PageSizeQuery = Annotated[
    str | None,
    Query(
        alias="pageSize",
        description=f"From 1, default {DEFAULT_PAGE_SIZE}; above {MAX_PAGE_SIZE} means the cap",
        json_schema_extra=_DIGITS,
    ),
]
StatusQuery = Annotated[str | None, Query(pattern="^(NEW|DISPATCHED|NOTIFIED|FAILED)$")]


def _event_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise HubgateError(404, f"No event found with id {raw[:64]}") from None


async def _scope(
    session: AsyncSession, runtime: Runtime, credentials: Credentials
) -> tuple[Tenant | None, int | None]:
    """Token-scoped routes: the Element token's instance; otherwise the user's tenant."""
    if credentials.element is not None:
        instance = await by_token(session, runtime, credentials)
        return None, instance.id
    return await authenticate_user(session, runtime.keyring, credentials), None


async def _list(
    response: Response,
    session: AsyncSession,
    *,
    tenant: Tenant | None,
    instance_id: int | None,
    status: str | None,
    page: str | None,
    page_size: str | None,
) -> list[Json]:
    number, size = page_numbers(
        page=page, page_size=page_size, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE
    )
    repo = EventRepository(session)
    found = await repo.list_events(
        tenant=tenant,
        instance_id=instance_id,
        status=status,
        offset=(number - 1) * size,
        limit=size,
    )
    attempts = await repo.attempts([e.id for e in found])
    response.headers["Elements-Returned-Count"] = str(len(found))
    return [event_json(e, attempts[e.id]) for e in found]


async def _one(
    session: AsyncSession, event_id: str, *, tenant: Tenant | None, instance_id: int | None
) -> Event:
    event = await EventRepository(session).find_event(
        _event_id(event_id), tenant=tenant, instance_id=instance_id
    )
    if event is None:
        raise HubgateError(404, f"No event found with id {event_id[:64]}")
    return event


async def _present(session: AsyncSession, event: Event) -> Json:
    attempts = await EventRepository(session).attempts([event.id])
    return event_json(event, attempts[event.id], with_raw=True)


async def _redeliver(session: AsyncSession, runtime: Runtime, event: Event) -> Json:
    await service.redeliver(session, event, service.utcnow())
    await session.commit()
    # A retry scheduled for later would hold the queueing lock; the redelivery replaces it.
    lock = tasks.delivery_lock(event.id)
    await runtime.jobs.cancel_queued(lock)
    await tasks.defer_delivery(runtime.jobs, event.id)
    return await _present(session, event)


async def _status(
    session: AsyncSession, runtime: Runtime, *, tenant: Tenant | None, instance_id: int
) -> Json:
    rows = await service.status(session, runtime.settings, tenant=tenant, instance_id=instance_id)
    if rows:
        return rows[0].as_json()
    instance = await EventRepository(session).instance(instance_id)
    name = instance.name if instance is not None else ""
    return {
        "instanceId": instance_id,
        "name": name,
        "eventsEnabled": False,
        "lastPollDate": None,
        "nextPollDate": None,
        "lagSeconds": 0,
        "lastError": None,
        "polls": 0,
        "pendingDeliveries": 0,
        "failedDeliveries": 0,
        "notifiedDeliveries": 0,
    }


# Token-scoped (an Element token names the instance) or the whole tenant's.


@router.get("/instances/events")
async def list_events(
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
    status: StatusQuery = None,
) -> list[Json]:
    tenant, instance_id = await _scope(session, runtime, credentials)
    return await _list(
        response,
        session,
        tenant=tenant,
        instance_id=instance_id,
        status=status,
        page=page,
        page_size=page_size,
    )


@router.get("/instances/events/status")
async def token_events_status(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await by_token(session, runtime, credentials)
    return await _status(session, runtime, tenant=None, instance_id=instance.id)


@router.get("/instances/events/{event_id}")
async def get_event(
    event_id: str, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    tenant, instance_id = await _scope(session, runtime, credentials)
    event = await _one(session, event_id, tenant=tenant, instance_id=instance_id)
    return await _present(session, event)


@router.post("/instances/events/{event_id}/redeliver")
async def redeliver_event(
    event_id: str, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    tenant, instance_id = await _scope(session, runtime, credentials)
    event = await _one(session, event_id, tenant=tenant, instance_id=instance_id)
    return await _redeliver(session, runtime, event)


# By instance id, within the caller's tenant; another tenant's instance is a 404 (D4).


@router.get("/instances/{instance_id:int}/events")
async def list_instance_events(
    instance_id: int,
    response: Response,
    session: SessionDep,
    tenant: TenantDep,
    page: PageQuery = None,
    page_size: PageSizeQuery = None,
    status: StatusQuery = None,
) -> list[Json]:
    instance = await get_owned(session, tenant, instance_id)
    return await _list(
        response,
        session,
        tenant=tenant,
        instance_id=instance.id,
        status=status,
        page=page,
        page_size=page_size,
    )


@router.get("/instances/{instance_id:int}/events/status")
async def instance_events_status(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await get_owned(session, tenant, instance_id)
    return await _status(session, runtime, tenant=tenant, instance_id=instance.id)


@router.get("/instances/{instance_id:int}/events/{event_id}")
async def get_instance_event(
    instance_id: int, event_id: str, session: SessionDep, tenant: TenantDep
) -> Json:
    instance = await get_owned(session, tenant, instance_id)
    event = await _one(session, event_id, tenant=tenant, instance_id=instance.id)
    return await _present(session, event)


@router.post("/instances/{instance_id:int}/events/{event_id}/redeliver")
async def redeliver_instance_event(
    instance_id: int, event_id: str, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await get_owned(session, tenant, instance_id)
    event = await _one(session, event_id, tenant=tenant, instance_id=instance.id)
    return await _redeliver(session, runtime, event)


# Vendor webhooks (D31): the vendor authenticates with its signature, not with our secrets.
# Usually answered before FastAPI's stack (events.fastintake); this route is the same handler.


@router.post(
    "/events/{element_key}/{encoded_id}",
    include_in_schema=True,
    response_class=Response,
    responses={
        200: {
            "description": "The acknowledgement the element gives (Twilio: empty TwiML)",
            "content": {"application/xml": {}},
        },
        403: {"description": "The vendor's signature does not match (D31)"},
    },
)
async def vendor_webhook(element_key: str, encoded_id: str, request: Request) -> Response:
    return await fastintake.vendor_webhook(request, element_key, encoded_id)
