"""Trace logs of hub calls and the audit log of platform calls (D27): building and showing."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.db.tenancy import Tenant
from hubgate.elements.manifest import Resource
from hubgate.hub.model import ResolvedInstance
from hubgate.hub.models import AuditLog, HubLog
from hubgate.hub.normalize import SecretMask, redact
from hubgate.hub.repository import LogRepository
from hubgate.instances.configuration import secret_keys
from hubgate.runtime import Runtime

MAX_LOGGED_BODY = 64 * 1024
log = logging.getLogger("hubgate.audit")


def _bounded(value: Any) -> Any:
    # A huge list page is summarised rather than stored whole in every log row.
    if isinstance(value, list) and len(repr(value)) > MAX_LOGGED_BODY:
        return {"truncated": True, "items": len(value)}
    return value


def trace_entry(
    instance: ResolvedInstance,
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    latency_ms: float,
    vendor_url: str | None,
    request_body: Any,
    response_body: Any,
    resource: Resource | None,
) -> HubLog:
    manifest = instance.element.manifest
    mask = SecretMask.of(
        [v for k, v in instance.config.items() if k in secret_keys(manifest) and v]
    )
    fields = set(resource.secret_fields) if resource is not None else set()
    return HubLog(
        organization_id=instance.organization_id,
        account_id=instance.account_id,
        instance_id=instance.id,
        request_id=request_id,
        method=method,
        path=mask.text(path),
        status=status,
        latency_ms=round(latency_ms, 3),
        vendor_url=mask.text(vendor_url) if vendor_url is not None else None,
        request_body=_bounded(redact(request_body, mask, fields)),
        response_body=_bounded(redact(response_body, mask, fields)),
    )


def hub_log_json(entry: HubLog) -> dict[str, Any]:
    return {
        "id": entry.id,
        "createdDate": entry.created_at.isoformat(),
        "requestId": entry.request_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "latencyMs": entry.latency_ms,
        "vendorUrl": entry.vendor_url,
        "requestBody": entry.request_body,
        "responseBody": entry.response_body,
    }


def audit_json(entry: AuditLog) -> dict[str, Any]:
    return {
        "id": entry.id,
        "createdDate": entry.created_at.isoformat(),
        "requestId": entry.request_id,
        "userId": entry.user_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
    }


class AuditMiddleware:
    """Records every platform call made with User/Organization credentials.

    The tenant is what the authentication dependency left in the request state; hub calls and
    anonymous catalog reads have none and cost one dictionary lookup here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                tenant = state.get("tenant")
                if isinstance(tenant, Tenant):
                    # Written before the answer leaves, so whoever reads the audit log next
                    # already finds this call.
                    await _safely_record(scope, tenant, message["status"], state)
            await send(message)

        await self.app(scope, receive, capture)


async def _safely_record(scope: Scope, tenant: Tenant, status: int, state: dict[str, Any]) -> None:
    try:
        await _record(scope, tenant, status, str(state.get("request_id", "")))
    except Exception:
        # The call itself was done; losing its audit row is logged loudly but must not turn
        # into an error for the caller.
        log.exception("could not write the audit log of %s", scope["path"])


async def _record(scope: Scope, tenant: Tenant, status: int, request_id: str) -> None:
    runtime: Runtime = scope["app"].state.runtime
    entry = AuditLog(
        organization_id=tenant.organization_id,
        account_id=tenant.account_id,
        user_id=tenant.user_id,
        request_id=request_id,
        method=scope["method"],
        path=scope["path"],
        status=status,
    )
    async with runtime.sessions() as session:
        await LogRepository(session).add(entry)
        await session.commit()
