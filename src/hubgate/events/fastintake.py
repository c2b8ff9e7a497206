"""Vendor webhooks (D31) answered before FastAPI's stack, and the one handler both paths use.

Measured with py-spy under bench/events.py's intake (3,000 Twilio status callbacks from 32
clients): FastAPI's routing through the included routers, its dependency solving and
Starlette's outer layers were about a third of the serve process's CPU per callback. A vendor
POST needs none of it (no dependency, no validation): the app's outermost ``__call__``
(``app.HubgateApp``) hands it to ``VendorIntake.answer``, the app's own middleware classes
(CORS, request id and body cap, audit, metrics and traces) built once from the same list as
the app's stack, around ``vendor_webhook``, whose errors get ``response_for``, the answer the
app's exception handlers give. The route registered with FastAPI (``events.endpoints``) calls
the same ``vendor_webhook``: it is what the OpenAPI lists and what answers a request that
comes past this path (tests/events/test_fast_intake.py shows both give the same answer).
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence

from fastapi import Request, Response
from fastapi.routing import iter_route_contexts
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.deps import get_runtime
from hubgate.elements.sdk import VendorRequest, WebhookRefusedError
from hubgate.errors_http import response_for
from hubgate.events import service, tasks
from hubgate.events.intake import GroupCommit
from hubgate.events.receivers import Receiver, ReceiverCache
from hubgate.events.repository import EventRepository
from hubgate.hub.state import hub_state
from hubgate.instances.service import decrypt_configuration
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.events")

NO_RECEIVER = "No event receiver at this address"
# The FastAPI route's name (its endpoint's), whose template the metrics and traces label with.
ROUTE_NAME = "vendor_webhook"


class VendorIntake:
    def __init__(self, *, prefix: str, layers: Sequence[Middleware]) -> None:
        self.prefix = f"{prefix}/events/"
        self._route: BaseRoute | None = None
        answer: ASGIApp = self._answer
        for cls, args, kwargs in reversed(layers):
            answer = cls(answer, *args, **kwargs)
        # The handler inside the layers, outermost first as in the app's middleware list.
        self.answer = answer

    def takes(self, scope: Scope) -> bool:
        """Whether this HTTP request is a vendor's POST to ``/events/{element_key}/{encoded_id}``
        (what FastAPI's route matches); if so the path parameters and the route are put in the
        scope, as the router would. ``scope["app"]`` must be set."""
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith(self.prefix):
            return False
        element_key, slash, encoded_id = path[len(self.prefix) :].partition("/")
        if not slash or not element_key or not encoded_id or "/" in encoded_id:
            return False
        scope["path_params"] = {"element_key": element_key, "encoded_id": encoded_id}
        scope["route"] = self._route or self._find_route(scope)
        return True

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        params = scope["path_params"]
        try:
            response = await vendor_webhook(request, params["element_key"], params["encoded_id"])
        except Exception as exc:
            # Exactly what the app's handlers answer: the D9 body, the database's absence a
            # 503 (D174), a bug's class and line logged (D173).
            response = await response_for(request, exc)
        await response(scope, receive, send)

    def _find_route(self, scope: Scope) -> BaseRoute:
        for context in iter_route_contexts(scope["app"].routes):
            if context.name == ROUTE_NAME and "POST" in (context.methods or ()):
                self._route = context.original_route
                return self._route
        raise LookupError(f"the app has no {ROUTE_NAME} route")


async def vendor_webhook(request: Request, element_key: str, encoded_id: str) -> Response:
    """Verify a vendor's POST with the element's hook and record what it reports; the answer
    (the element's acknowledgement) follows the commit."""
    runtime = get_runtime(request)
    element = runtime.registry.find(element_key)
    hook = element.hooks.webhook if element is not None else None
    if hook is None:
        raise HubgateError(404, NO_RECEIVER)
    receiver = await _receiver(request, runtime, _instance_id(encoded_id))
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
    if answer.changes:
        # The answer waits for the commit (the vendor may forget what it was told was taken),
        # made together with the callbacks that came meanwhile (D460); the delivery's job is
        # deferred after that commit, not awaited here (D312).
        await group_commit(request, runtime).submit(service.VendorReport(instance, answer.changes))
    return Response(content=answer.body, status_code=answer.status, media_type=answer.media_type)


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


def group_commit(request: Request, runtime: Runtime) -> GroupCommit:
    """The app's recorder of vendor webhooks (D460), made on first use."""
    state = request.app.state
    found: GroupCommit | None = getattr(state, "vendor_group_commit", None)
    if found is not None:
        return found
    kicker = tasks.DispatchKicker(runtime.jobs)

    async def record(reports: Sequence[service.VendorReport]) -> list[list[uuid.UUID]]:
        async with runtime.sessions() as session:
            created = await service.record_vendor_reports(
                session, runtime, reports, service.utcnow()
            )
            await session.commit()
        return created

    async def committed(count: int) -> None:
        try:
            await kicker.kick()
        except Exception:
            # Committed events are safe: the sweep defers what has no job.
            log.exception("deferring the delivery of %d events failed", count)

    made = state.vendor_group_commit = GroupCommit(record, committed)
    return made


def _receivers(request: Request, runtime: Runtime) -> ReceiverCache:
    state = request.app.state
    cache: ReceiverCache | None = getattr(state, "webhook_receivers", None)
    if cache is None:
        ttl = runtime.settings.hub_token_cache_ttl
        cache = state.webhook_receivers = ReceiverCache(hub_state(request).tokens, ttl)
    return cache


async def _receiver(request: Request, runtime: Runtime, instance_id: int) -> Receiver | None:
    """The instance and its decrypted configuration, from the cache when it can be (D312)."""
    cache = _receivers(request, runtime)
    found = cache.get(instance_id)
    if found is not None:
        return found
    epoch = cache.epoch
    async with runtime.sessions() as session:
        instance = await EventRepository(session).instance(instance_id)
    if instance is None:
        return None
    return cache.put(instance, decrypt_configuration(runtime.keyring, instance), epoch)
