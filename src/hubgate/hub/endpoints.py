"""Hub routes (D20), trace and audit logs (D27), API docs: routes only."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from psycopg.errors import ForeignKeyViolation
from sqlalchemy.exc import IntegrityError

from hubgate.deps import RuntimeDep, SessionDep, TenantDep, credentials_from
from hubgate.errors_http import request_id
from hubgate.formulas import triggers as formula_triggers
from hubgate.hub import canonical, docs, service
from hubgate.hub.logs import audit_json, hub_log_json, trace_entry
from hubgate.hub.model import HubCall, HubResult, ResolvedInstance
from hubgate.hub.paging import page_numbers
from hubgate.hub.repository import LogRepository
from hubgate.hub.state import hub_state
from hubgate.instances.service import get_owned
from hubgate.kit.errors import HubgateError
from hubgate.openapi_doc import ANY_JSON_BODY, ERROR_TEXT
from hubgate.runtime import Runtime

router = APIRouter()

_BODYLESS = frozenset({"GET", "DELETE", "HEAD"})
HUB_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class JsonAnswer:
    """A JSON answer as the ASGI messages carry it: what Starlette's ``Response`` would hold
    (``status_code``, ``raw_headers``, ``body``) built without it. The hub fast path sends
    these three as they are; FastAPI's routes get a ``Response`` of them (``response``)."""

    __slots__ = ("body", "raw_headers", "status_code")

    def __init__(self, body: Any, headers: dict[str, str], status: int = 200) -> None:
        try:
            content = orjson.dumps(body)
        except TypeError:  # what orjson refuses (integers past 64 bits) the standard module writes
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        self.status_code = status
        self.body = content
        # In the order and spelling Starlette's ``Response.init_headers`` gives them.
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", str(len(content)).encode()))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw

    def response(self) -> Response:
        response = Response(self.body, status_code=self.status_code)
        response.raw_headers = self.raw_headers
        return response


def _json_response(body: Any, headers: dict[str, str], status: int = 200) -> Response:
    return JsonAnswer(body, headers, status).response()


async def _trace(
    runtime: Runtime,
    request: Request,
    instance: ResolvedInstance,
    call: HubCall,
    started: float,
    status: int,
    result: HubResult | None,
    response_body: Any,
) -> None:
    entry = trace_entry(
        instance,
        request_id=request_id(request),
        method=call.method,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        status=status,
        latency_ms=(time.perf_counter() - started) * 1000,
        vendor_url=result.vendor_url if result else None,
        request_body=result.vendor_request if result else None,
        response_body=response_body,
        resource=result.resource if result else None,
    )
    async with runtime.sessions() as session:
        try:
            await LogRepository(session).add(entry)
            await session.commit()
        except IntegrityError as exc:
            if not isinstance(exc.orig, ForeignKeyViolation):
                raise
            # The instance was deleted while the call ran: its trace logs went with it, and
            # this one has nothing left to belong to. The call's own answer still stands.


async def hub_call(request: Request, hub: str, rest: str) -> Response:
    """Any resource of the instance's element; the instance is the ``Element`` token's."""
    return (await hub_answer(request, rest)).response()


async def hub_answer(request: Request, rest: str) -> JsonAnswer:
    """``hub_call``'s answer as the hub fast path sends it (no ``Response`` between)."""
    started = time.perf_counter()
    runtime: Runtime = request.app.state.runtime
    state = hub_state(request)
    scope = request.scope
    # The three headers a hub call reads, in one pass over the scope's (the first of each, as
    # ``request.headers.get`` gives it), without Starlette's ``Headers`` (D531).
    authorization = content_type = idempotency_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"idempotency-key" and idempotency_key is None:
            idempotency_key = value.decode("latin-1")
    credentials = credentials_from(request, authorization)
    instance = await service.resolve(runtime, runtime.sessions, state.tokens, credentials)
    method: str = scope["method"]
    call = HubCall(
        method,
        tuple(rest.split("/")),
        # What ``request.query_params.multi_items()`` gives, without the dict it also builds.
        tuple(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
        b"" if method in _BODYLESS else await request.body(),
        content_type,
        idempotency_key,
    )
    try:
        runtime.limits.check_hub_call(instance.id)
        result = await canonical.handle(runtime, instance, call, state.responses)
    except HubgateError as exc:
        exc.headers[service.INSTANCE_HEADER] = str(instance.id)
        if instance.trace_logging_enabled:
            body = {"message": exc.message, **exc.extra}
            await _trace(runtime, request, instance, call, started, exc.status, None, body)
        raise
    await formula_triggers.hub_called(runtime, instance.id, call, result.status, result.body)
    if instance.trace_logging_enabled:
        await _trace(runtime, request, instance, call, started, result.status, result, result.body)
    return JsonAnswer(result.body, result.headers, result.status)


_HUB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The vendor's object or list, normalized (D21-D24)",
        "content": {"application/json": {"schema": {}}},
    },
    "4XX": {"description": "Hubgate's own refusals, and the vendor's 4xx passed on (D10)"},
    **{status: {"description": ERROR_TEXT[status]} for status in (502, 503, 504)},
}
# One route per method, each with its own operation id, so the platform's OpenAPI stays valid.
for _method in HUB_METHODS:
    router.add_api_route(
        "/hubs/{hub}/{rest:path}",
        hub_call,
        methods=[_method],
        tags=["hubs"],
        operation_id=f"hub{_method.title()}",
        response_class=Response,
        response_model=None,
        responses=_HUB_RESPONSES,
        openapi_extra=ANY_JSON_BODY if _method not in _BODYLESS else None,
    )


@router.get("/instances/{instance_id:int}/logs", tags=["instances"])
async def instance_logs(
    instance_id: int,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
) -> Response:
    """The instance's trace logs (D27), newest first, ``page``/``pageSize``."""
    await get_owned(session, tenant, instance_id)
    page = _page(request)
    found = await LogRepository(session).hub_logs(
        tenant, instance_id, offset=(page[0] - 1) * page[1], limit=page[1]
    )
    return _listing([hub_log_json(e) for e in found])


@router.get("/audit-logs", tags=["audit"])
async def audit_logs(
    request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Response:
    """Platform calls of the caller's account, newest first, ``page``/``pageSize``."""
    page = _page(request)
    found = await LogRepository(session).audit_logs(
        tenant, offset=(page[0] - 1) * page[1], limit=page[1]
    )
    return _listing([audit_json(e) for e in found])


def _page(request: Request) -> tuple[int, int]:
    query = request.query_params
    return page_numbers(
        page=query.get("page"), page_size=query.get("pageSize"), default_size=50, max_size=500
    )


def _listing(items: list[dict[str, Any]]) -> Response:
    return _json_response(items, {service.RETURNED_COUNT: str(len(items))})


@router.get("/elements/{key_or_id}/docs", tags=["elements"])
async def element_docs(key_or_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """OpenAPI 3 of the element's hub resources, generated from its manifest."""
    return docs.element_openapi(runtime.registry.get(key_or_id), runtime.settings.base_url)


@router.get("/instances/{instance_id:int}/docs", tags=["instances"])
async def instance_docs(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> dict[str, Any]:
    """The element's OpenAPI 3 for one instance: its server is this Hubgate, ready to try."""
    instance = await get_owned(session, tenant, instance_id)
    element = runtime.registry.get(instance.element_key)
    return docs.element_openapi(element, runtime.settings.base_url, instance_id=instance.id)
