"""Vendor calls of the hub: request building, retries (D25) and the vendor's errors (D9)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import orjson

from hubgate.elements.manifest import Manifest, PushParam
from hubgate.hub.model import ResolvedInstance
from hubgate.instances.credentials import provider_error
from hubgate.kit.ceql import Comparison, Value
from hubgate.kit.ceql_values import as_datetime
from hubgate.kit.egress import (
    EgressClient,
    EgressDenied,
    EgressError,
    EgressResponse,
    EgressTimeout,
)
from hubgate.kit.errors import HubgateError, vendor_error
from hubgate.observability import metrics
from hubgate.settings import Settings

_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})


def format_value(value: Value, push: PushParam) -> str:
    """A pushed literal as the vendor parameter wants it (``format`` of the manifest)."""
    if push.format != "text":
        moment = as_datetime(value)
        if moment is None:  # the planner only pushes values of the declared kinds
            raise ValueError(f"{value!r} is not a timestamp")
        day = moment.astimezone(UTC).date()
        if push.format == "gmt-next-day-start":
            day += timedelta(days=1)
        return day.isoformat() if push.format == "gmt-day" else f"{day.isoformat()}T00:00:00Z"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def pushed_params(
    pushed: Sequence[Comparison], params: Mapping[str, Mapping[str, PushParam]]
) -> tuple[list[tuple[str, str]], list[Comparison]]:
    """Vendor query parameters for the pushed comparisons, one per parameter name.

    ``params`` maps a folded CEQL field name to its operators' parameters. Returns the query
    and the comparisons actually sent (a second predicate for a parameter already used stays
    local: a query parameter is sent once).
    """
    query: list[tuple[str, str]] = []
    sent: list[Comparison] = []
    used: set[str] = set()
    for comparison in pushed:
        push = params[fold(comparison.field)][comparison.op]
        if push.param in used:
            continue
        used.add(push.param)
        query.append((push.param, format_value(comparison.value, push)))
        sent.append(comparison)
    return query, sent


def fold(name: str) -> str:
    return name.casefold().replace("_", "")


def _retry_after(response: EgressResponse) -> float | None:
    text = response.headers.get("Retry-After")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return max(seconds, 0.0)


async def send(
    egress: EgressClient,
    settings: Settings,
    instance: ResolvedInstance,
    method: str,
    url: str,
    *,
    params: Sequence[tuple[str, str]] | None = None,
    data: Sequence[tuple[str, str]] | None = None,
    idempotency_key: str | None = None,
) -> EgressResponse:
    """One vendor call with D25's retries; any failure left after them is a HubgateError."""
    manifest = instance.element.manifest
    headers: dict[str, str] | None = None
    if idempotency_key and manifest.idempotency_header:
        headers = {manifest.idempotency_header: idempotency_key}
    # A write is repeated only when the vendor surely did not act (429) or the caller made it
    # safe to repeat with an Idempotency-Key.
    repeatable = method in _IDEMPOTENT or idempotency_key is not None
    attempts = settings.hub_retries + 1
    response: EgressResponse | None = None
    for attempt in range(attempts):
        last = attempt == attempts - 1
        if attempt:
            metrics.vendor_retry()
        timer = metrics.VendorTimer(method)
        try:
            response = await egress.request(
                method, url, params=params, data=data, headers=headers, auth=instance.auth
            )
        except EgressTimeout:
            timer.done(failure="timeout")
            raise HubgateError(504, f"{manifest.vendor_name} did not answer in time") from None
        except EgressDenied:
            timer.done(failure="denied")
            raise HubgateError(
                502,
                f"Configuration {manifest.base_url_key} points at an address Hubgate may not"
                " reach; see HUBGATE_EGRESS_ALLOW",
            ) from None
        except EgressError:
            timer.done(failure="unreachable")
            if repeatable and not last:
                await asyncio.sleep(_backoff(settings, attempt))
                continue
            raise HubgateError(502, f"{manifest.vendor_name} could not be reached") from None
        timer.done(status=response.status)
        status = response.status
        retryable = status == 429 or (status >= 500 and repeatable)
        if not retryable or last:
            break
        delay = _retry_after(response) if status in (429, 503) else None
        if delay is None:
            delay = _backoff(settings, attempt)
        if delay > settings.hub_retry_after_max:
            break  # the vendor asks for longer than a caller should wait: say so at once
        await asyncio.sleep(delay)
    assert response is not None
    if response.status >= 400 or response.status < 200:
        raise error_for(manifest, response)
    return response


def _backoff(settings: Settings, attempt: int) -> float:
    base: float = settings.hub_retry_backoff * (2**attempt)
    return base * (0.5 + random.random() / 2)  # jitter keeps many callers from retrying in step


def error_for(manifest: Manifest, response: EgressResponse) -> HubgateError:
    """The D9 error for a vendor answer that is not a success (D10, D25)."""
    message, code = provider_error(manifest, response)
    status = response.status
    name = manifest.vendor_name
    if status == 429:
        error = vendor_error(
            429,
            f"{name} is rate limiting this instance; try again later",
            provider_message=message,
            provider_code=code,
            provider_status=status,
        )
        retry_after = _retry_after(response)
        error.headers["Retry-After"] = str(max(1, round(retry_after or 1)))
        return error
    if status in (401, 403):
        # The instance's stored credentials were refused: not the caller's fault, nor a 401
        # about the caller's own credentials (D8), so it is a gateway error.
        return vendor_error(
            502,
            f"{name} rejected the instance's credentials",
            provider_message=message,
            provider_code=code,
            provider_status=status,
        )
    if 400 <= status < 500:
        return vendor_error(
            status,
            f"{name} refused the request: {message}",
            provider_message=message,
            provider_code=code,
            provider_status=status,
        )
    return vendor_error(
        502,
        f"{name} failed to answer (HTTP {status})",
        provider_message=message,
        provider_code=code,
        provider_status=status,
    )


def parse_json(manifest: Manifest, response: EgressResponse) -> Any:
    if not response.body:
        return None
    try:
        # orjson: on the hub's hot path parsing the vendor's page cost more than anything of
        # Hubgate's own (bench/README.md).
        return orjson.loads(response.body)
    except ValueError:
        raise HubgateError(502, f"{manifest.vendor_name} answered with invalid JSON") from None
