"""Event records (D30), redelivery (D29), event status, and vendor webhooks (D31): routes only."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from hubgate.db.tenancy import Tenant
from hubgate.deps import CredentialsDep, RuntimeDep, SessionDep, TenantDep
from hubgate.elements.sdk import VendorRequest, WebhookRefusedError
from hubgate.events import service, tasks
from hubgate.events.models import Event
from hubgate.events.receivers import Receiver, ReceiverCache
from hubgate.events.repository import EventRepository
from hubgate.events.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, event_json
from hubgate.hub.paging import page_numbers
from hubgate.hub.state import hub_state
from hubgate.instances.service import by_token, decrypt_configuration, get_owned
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user

log = logging.getLogger("hubgate.events")
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
NO_RECEIVER = "No event receiver at this address"
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


def _instance_id(encoded: str) -> int:
    try:
        text = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_").decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise HubgateError(404, NO_RECEIVER)
    return int(text)


def _called_url(request: Request, runtime: Runtime) -> str:
    """The URL as the vendor called it: Hubgate's public URL, the path and query as sent."""
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    raw_query: bytes = request.scope.get("query_string") or b""
    path = raw_path.decode("latin-1").split("?", 1)[0]
    query = raw_query.decode("latin-1")
    return runtime.settings.base_url + path + (f"?{query}" if query else "")


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
async def vendor_webhook(
    element_key: str, encoded_id: str, request: Request, session: SessionDep, runtime: RuntimeDep
) -> Response:
    element = runtime.registry.find(element_key)
    hook = element.hooks.webhook if element is not None else None
    if hook is None:
        raise HubgateError(404, NO_RECEIVER)
    receiver = await _receiver(request, session, runtime, _instance_id(encoded_id))
    if receiver is None or receiver.instance.element_key != element_key:
        raise HubgateError(404, NO_RECEIVER)
    instance, configuration = receiver.instance, receiver.configuration
    if (
        configuration.get("event.notification.enabled") != "true"
        or configuration.get("event.vendor.type") != "webhook"
        or instance.disabled
    ):
        # The same answer as for an instance that does not exist: the route takes no
        # credentials, so any difference would tell a stranger which instance ids are real.
        raise HubgateError(404, NO_RECEIVER)
    headers = {k.lower(): v for k, v in request.headers.items()}
    vendor_request = VendorRequest(_called_url(request, runtime), headers, await request.body())
    try:
        answer = hook.receive(vendor_request, configuration)
    except WebhookRefusedError as refused:
        raise HubgateError(403, str(refused)) from None
    created = await service.record_vendor_changes(
        session, runtime, instance, answer.changes, service.utcnow()
    )
    # The answer waits for the commit (the vendor may forget what it was told was taken), not
    # for the delivery's job, which is deferred once the answer is out (D312).
    await session.commit()
    kicker = _kicker(request, runtime)
    after = BackgroundTask(_defer_dispatch, kicker, len(created)) if created else None
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type=answer.media_type,
        background=after,
    )


async def _defer_dispatch(kicker: tasks.DispatchKicker, count: int) -> None:
    try:
        await kicker.kick()
    except Exception:
        # Committed events are safe: the sweep defers what has no job.
        log.exception("deferring the delivery of %d events failed", count)


def _kicker(request: Request, runtime: Runtime) -> tasks.DispatchKicker:
    state = request.app.state
    kicker: tasks.DispatchKicker | None = getattr(state, "dispatch_kicker", None)
    if kicker is None:
        kicker = state.dispatch_kicker = tasks.DispatchKicker(runtime.jobs)
    return kicker


def _receivers(request: Request, runtime: Runtime) -> ReceiverCache:
    state = request.app.state
    cache: ReceiverCache | None = getattr(state, "webhook_receivers", None)
    if cache is None:
        ttl = runtime.settings.hub_token_cache_ttl
        cache = state.webhook_receivers = ReceiverCache(hub_state(request).tokens, ttl)
    return cache


async def _receiver(
    request: Request, session: AsyncSession, runtime: Runtime, instance_id: int
) -> Receiver | None:
    """The instance and its decrypted configuration, from the cache when it can be (D312)."""
    cache = _receivers(request, runtime)
    found = cache.get(instance_id)
    if found is not None:
        return found
    epoch = cache.epoch
    instance = await EventRepository(session).instance(instance_id)
    if instance is None:
        return None
    return cache.put(instance, decrypt_configuration(runtime.keyring, instance), epoch)
