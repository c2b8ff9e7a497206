"""The vendor session (D25, D57): one instance's way to its vendor, whoever calls.

The credential check, the hub pipeline, element hooks and the poller all reach a vendor through
a :class:`VendorSession`: one URL filler, one auth path (the manifest's ``auth``), one retry
policy and one map from the vendor's answers to Hubgate's errors.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import orjson

from hubgate.elements.manifest import Manifest, PushParam
from hubgate.elements.sdk import Configuration
from hubgate.hub.model import ResolvedInstance
from hubgate.hub.routing import fill
from hubgate.kit.ceql import Comparison, Value
from hubgate.kit.ceql_values import as_datetime
from hubgate.kit.egress import (
    EgressClient,
    EgressDenied,
    EgressError,
    EgressResponse,
    EgressTimeout,
)
from hubgate.kit.errors import HubgateError, bad_request, vendor_error
from hubgate.kit.jsonpath import dig
from hubgate.observability import metrics
from hubgate.settings import Settings

_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
_PROVIDER_TEXT_LIMIT = 500


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
    clauses: dict[str, list[str]] = {}
    for comparison in pushed:
        push = params[fold(comparison.field)][comparison.op]
        value = format_value(comparison.value, push)
        if push.clause is not None:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            clauses.setdefault(push.param, []).append(push.clause.replace("{value}", escaped))
            sent.append(comparison)
            continue
        if push.param in used:
            continue
        used.add(push.param)
        query.append((push.param, value))
        sent.append(comparison)
    query.extend((param, " AND ".join(parts)) for param, parts in clauses.items())
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


def _backoff(settings: Settings, attempt: int) -> float:
    base: float = settings.hub_retry_backoff * (2**attempt)
    return base * (0.5 + random.random() / 2)  # jitter keeps many callers from retrying in step


_URLS_KEPT = 64
_KEPT_AS = "vendor session"


class VendorSession:
    """One instance's vendor, from its manifest and decrypted configuration."""

    __slots__ = ("_auth", "_urls", "base_url", "config", "egress", "manifest", "settings")

    def __init__(
        self,
        egress: EgressClient,
        settings: Settings,
        manifest: Manifest,
        config: Configuration,
    ) -> None:
        self.egress = egress
        self.settings = settings
        self.manifest = manifest
        self.config = config
        self.base_url = (config.get(manifest.base_url_key) or "").rstrip("/")
        self._auth = manifest.auth.headers(config)
        self._urls: dict[tuple[str, tuple[tuple[str, str | None], ...]], str] = {}

    @classmethod
    def of(
        cls, egress: EgressClient, settings: Settings, instance: ResolvedInstance
    ) -> VendorSession:
        """The instance's session, made once per resolved instance rather than per call
        (its auth headers and filled URLs are then built once, bench/README.md, session 21).

        A resolved instance is immutable and the token cache replaces it when the instance
        changes (a refreshed OAuth token is a new one too), so the session kept on it is
        still right, and it goes with it (``ResolvedInstance.kept``)."""
        found = instance.kept.get(_KEPT_AS)
        if (
            isinstance(found, VendorSession)
            and found.egress is egress
            and found.settings is settings
        ):
            return found
        session = cls(egress, settings, instance.element.manifest, instance.config)
        instance.kept[_KEPT_AS] = session
        return session

    def url(self, path: str, values: Mapping[str, str | None] | None = None) -> str:
        """The vendor URL of a manifest path: ``{name}`` filled from the path's values, then
        the configuration, each quoted as one path segment."""
        key = (path, tuple(values.items()) if values else ())
        found = self._urls.get(key)
        if found is None:
            merged = {**self.config, **values} if values else dict(self.config)
            found = self.base_url + fill(path, merged)
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            self._urls[key] = found
        return found

    # --- sending -------------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        data: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> EgressResponse:
        """One vendor call with D25's retries; any failure left after them is a HubgateError
        (an answer the manifest's error rule calls a failure included)."""
        manifest = self.manifest
        headers = self._auth
        if idempotency_key and manifest.idempotency_header:
            headers = {**headers, manifest.idempotency_header: idempotency_key}
        if json is not None:
            body: bytes | Sequence[tuple[str, str]] | None = orjson.dumps(json)
            headers = {**headers, "Content-Type": "application/json"}
        else:
            body = data
        # A write is repeated only when the vendor surely did not act (429) or the caller made
        # it safe to repeat with an Idempotency-Key.
        repeatable = method in _IDEMPOTENT or idempotency_key is not None
        settings = self.settings
        attempts = settings.hub_retries + 1
        response: EgressResponse | None = None
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if attempt:
                metrics.vendor_retry()
            timer = metrics.VendorTimer(method)
            try:
                response = await self.egress.request(
                    method, url, params=params, data=body, headers=headers
                )
            except EgressTimeout:
                timer.done(failure="timeout")
                raise HubgateError(504, f"{manifest.vendor_name} did not answer in time") from None
            except EgressDenied:
                timer.done(failure="denied")
                raise HubgateError(
                    502,
                    f"Configuration {manifest.base_url_key} points at an address Hubgate may"
                    " not reach; see HUBGATE_EGRESS_ALLOW",
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
            raise self.error_for(response)
        self.raise_for_body(response)
        return response

    async def call(
        self,
        method: str,
        path: str,
        *,
        values: Mapping[str, str | None] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
    ) -> Any:
        """A hook's vendor call: ``path`` of the manifest's kind, the parsed JSON answer."""
        response = await self.send(method, self.url(path, values), params=params, json=json)
        return self.parse_json(response)

    async def check(self) -> None:
        """The manifest's check call (D13): the credentials work, or the error says why."""
        manifest = self.manifest
        check = manifest.check
        try:
            url = self.url(check.path)
        except HubgateError as exc:
            raise bad_request(f"The credential check cannot be made: {exc.message}") from None
        try:
            response = await self.egress.request(check.method, url, headers=self._auth)
        except EgressDenied as exc:
            raise bad_request(
                f"Configuration {manifest.base_url_key} points at an address Hubgate may not"
                f" reach ({exc}); see HUBGATE_EGRESS_ALLOW"
            ) from None
        except EgressTimeout:
            raise HubgateError(504, f"{manifest.vendor_name} did not answer in time") from None
        except EgressError:
            raise HubgateError(502, f"{manifest.vendor_name} could not be reached") from None
        status = response.status
        if 200 <= status < 300:
            refused = self._refusal(response)
            if refused is None:
                return
            status, message, code = refused
        else:
            message, code = self.provider_error(response)
        raise self._check_error(status, message, code, response)

    # --- the error map -------------------------------------------------------------------------

    def provider_error(self, response: EgressResponse) -> tuple[str, Any]:
        """The vendor's own message and code, read where the manifest says they are."""
        text = response.body[: _PROVIDER_TEXT_LIMIT * 4].decode("utf-8", "replace")
        message = text[:_PROVIDER_TEXT_LIMIT]
        try:
            body = orjson.loads(response.body)
        except ValueError:
            return message, None
        return self._from_body(body, message)

    def _from_body(self, body: Any, fallback: str) -> tuple[str, Any]:
        errors = self.manifest.errors
        code = dig(body, errors.code) if errors.code is not None else None
        found = dig(body, errors.message)
        message = found[:_PROVIDER_TEXT_LIMIT] if isinstance(found, str) else fallback
        if isinstance(code, dict | list):
            code = None  # a path that lands on a container names no code
        return message, code

    def _refusal(self, response: EgressResponse) -> tuple[int, str, Any] | None:
        """For a 2xx answer the error rule calls a failure (D57): the status it stands for,
        the vendor's message and code; None for a real success."""
        errors = self.manifest.errors
        when = errors.when
        if when is None or not response.body:
            return None
        try:
            body = orjson.loads(response.body)
        except ValueError:
            return None
        found = dig(body, when.path)
        if found != when.equals or type(found) is not type(when.equals):
            return None
        message, code = self._from_body(body, "")
        status = errors.code_statuses.get(code, errors.status) if isinstance(code, str) else None
        return status or errors.status, message or "failed", code

    def raise_for_body(self, response: EgressResponse) -> None:
        refused = self._refusal(response)
        if refused is not None:
            status, message, code = refused
            raise self._call_error(status, message, code, response)

    def error_for(self, response: EgressResponse) -> HubgateError:
        """The D9 error for a vendor answer that is not a success (D10, D25)."""
        message, code = self.provider_error(response)
        return self._call_error(response.status, message, code, response)

    def _call_error(
        self, status: int, message: str, code: Any, response: EgressResponse
    ) -> HubgateError:
        name = self.manifest.vendor_name

        def provider(status: int, text: str) -> HubgateError:
            return vendor_error(
                status,
                text,
                provider_message=message,
                provider_code=code,
                provider_status=response.status,
            )

        if status == 429:
            error = provider(429, f"{name} is rate limiting this instance; try again later")
            retry_after = _retry_after(response)
            error.headers["Retry-After"] = str(max(1, round(retry_after or 1)))
            return error
        if status in (401, 403):
            # The instance's stored credentials were refused: not the caller's fault, nor a 401
            # about the caller's own credentials (D8), so it is a gateway error.
            return provider(502, f"{name} rejected the instance's credentials")
        if 400 <= status < 500:
            return provider(status, f"{name} refused the request: {message}")
        return provider(502, f"{name} failed to answer (HTTP {status})")

    def _check_error(
        self, status: int, message: str, code: Any, response: EgressResponse
    ) -> HubgateError:
        name = self.manifest.vendor_name

        def provider(status: int, text: str) -> HubgateError:
            return vendor_error(
                status,
                text,
                provider_message=message,
                provider_code=code,
                provider_status=response.status,
            )

        if status == 429:
            error = provider(429, f"{name} is rate limiting the credential check; try again later")
            retry_after = response.headers.get("Retry-After", "1")
            error.headers["Retry-After"] = (
                retry_after if retry_after.isascii() and retry_after.isdigit() else "1"
            )
            return error
        if 400 <= status < 500:
            return provider(400, f"{name} rejected the credentials")
        return provider(502, f"{name} failed to check the credentials")

    # --- answers -------------------------------------------------------------------------------

    def parse_json(self, response: EgressResponse) -> Any:
        if not response.body:
            return None
        try:
            # orjson: on the hub's hot path parsing the vendor's page cost more than anything
            # of Hubgate's own (bench/README.md).
            return orjson.loads(response.body)
        except ValueError:
            raise HubgateError(
                502, f"{self.manifest.vendor_name} answered with invalid JSON"
            ) from None
