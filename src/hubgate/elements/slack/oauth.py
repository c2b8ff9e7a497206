"""Slack's OAuth v2 install flow with token rotation (slack-api.md section 1).

The consent page is ``/oauth/v2/authorize`` with comma-separated bot scopes; the code and, with
rotation on, each refresh token go to ``oauth.v2.access`` with the app's id and secret in HTTP
Basic auth. Slack answers HTTP 200 with ``{"ok": false, "error"}`` when it refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from hubgate.elements.sdk import OAuthTokens
from hubgate.kit.egress import EgressClient
from hubgate.kit.errors import HubgateError, vendor_error

TOKEN_URL: Final = "https://slack.com/api/oauth.v2.access"  # noqa: S105 - a URL


def scopes(text: str) -> str:
    """Slack wants ``a,b,c``; Open Connectors' callers wrote ``a, b, c`` or ``a b c``."""
    return ",".join(part for part in re.split(r"[,\s]+", text) if part)


class SlackOAuth:
    """The ``slack`` element's OAuth flow: bot tokens, refreshed through token rotation."""

    expired_codes: frozenset[str] = frozenset({"token_expired"})

    def authorize_url(
        self, authorization_url: str, client_id: str, callback_url: str, scope: str, state: str
    ) -> str:
        query = urlencode(
            {
                "client_id": client_id,
                "scope": scopes(scope),
                "redirect_uri": callback_url,
                "state": state,
            }
        )
        separator = "&" if urlsplit(authorization_url).query else "?"
        return authorization_url + separator + query

    async def exchange(
        self, http: EgressClient, configuration: Mapping[str, str | None], code: str
    ) -> OAuthTokens:
        form = [("grant_type", "authorization_code"), ("code", code)]
        callback = configuration.get("oauth.callback.url")
        if callback:
            form.append(("redirect_uri", callback))
        return await self._token_call(http, configuration, form, "the OAuth code")

    async def refresh(
        self, http: EgressClient, configuration: Mapping[str, str | None], refresh_token: str
    ) -> OAuthTokens:
        form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
        return await self._token_call(http, configuration, form, "the token refresh")

    async def _token_call(
        self,
        http: EgressClient,
        configuration: Mapping[str, str | None],
        form: list[tuple[str, str]],
        what: str,
    ) -> OAuthTokens:
        url = configuration.get("oauth.token.url") or TOKEN_URL
        client = (
            configuration.get("oauth.api.key") or "",
            configuration.get("oauth.api.secret") or "",
        )
        response = await http.request("POST", url, data=form, auth=client)
        if response.status == 429:
            error = HubgateError(429, f"Slack is rate limiting {what}; try again later")
            wait = response.headers.get("Retry-After", "1")
            error.headers["Retry-After"] = wait if wait.isascii() and wait.isdigit() else "1"
            raise error
        if response.status >= 500:
            # Slack's trouble, not a refusal: nothing is decided about the instance.
            raise HubgateError(502, f"Slack could not answer {what} (HTTP {response.status})")
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HubgateError(502, f"Slack answered {what} with something other than JSON")
        if body.get("ok") is not True or not isinstance(body.get("access_token"), str):
            code = body.get("error") if isinstance(body.get("error"), str) else None
            raise vendor_error(
                400,
                f"Slack refused {what}: {code or 'no access token in the answer'}",
                provider_message=code,
                provider_code=code,
                provider_status=response.status,
            )
        refresh = body.get("refresh_token")
        expires_in = body.get("expires_in")
        return OAuthTokens(
            access_token=body["access_token"],
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_in=expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
        )
