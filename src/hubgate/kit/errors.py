"""The one error type every layer raises; the HTTP edge turns it into the D9 body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AUTH_FAILED = "Invalid Organization or User secret, or invalid Element token provided."


class HubgateError(Exception):
    """An error with an HTTP status and a message that is safe to show to the caller."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})


def bad_request(message: str, **extra: Any) -> HubgateError:
    return HubgateError(400, message, extra=extra)


def unauthorized() -> HubgateError:
    return HubgateError(401, AUTH_FAILED)


def not_found(what: str) -> HubgateError:
    return HubgateError(404, f"{what} not found")


def vendor_error(
    status: int,
    message: str,
    *,
    provider_message: str | None,
    provider_code: Any,
    provider_status: int | None,
) -> HubgateError:
    extra: dict[str, Any] = {"providerMessage": provider_message, "providerStatus": provider_status}
    if provider_code is not None:
        extra["providerCode"] = provider_code
    return HubgateError(status, message, extra=extra)
