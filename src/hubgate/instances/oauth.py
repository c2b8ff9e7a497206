"""OAuth 2.0 provisioning and token upkeep for the elements whose hooks hold an OAuth flow (D56).

The element knows its vendor's requests (:class:`hubgate.elements.sdk.OAuthFlow`); this module
holds Hubgate's side: the consent URL, the code exchange when an instance is created, and access
tokens refreshed before they expire, or once more when the vendor says one has expired, with
only one process calling the vendor for an instance at a time (the instance's row lock).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.elements.registry import Element
from hubgate.elements.sdk import OAuthFlow, OAuthTokens, ResolvedInstance
from hubgate.instances import configuration as cfg
from hubgate.instances.changes import mark_changed
from hubgate.instances.models import Instance
from hubgate.instances.repository import InstanceRepository
from hubgate.instances.secrets import decrypt_configuration, store_configuration
from hubgate.kit.egress import EgressDenied, EgressError, EgressTimeout
from hubgate.kit.errors import HubgateError, bad_request, vendor_error
from hubgate.runtime import Runtime

T = TypeVar("T")

API_KEY = "oauth.api.key"
API_SECRET = "oauth.api.secret"  # noqa: S105 - a configuration key
CALLBACK_URL = "oauth.callback.url"
SCOPE = "oauth.scope"
AUTHORIZATION_URL = "oauth.authorization.url"
TOKEN_URL = "oauth.token.url"  # noqa: S105 - a configuration key
# The configuration keys ``/oauth/url`` takes as query parameters of the same names (D56).
URL_OVERRIDES = ("base.url", AUTHORIZATION_URL, TOKEN_URL)
# An access token that expires within this many seconds is refreshed before it is used, so a
# call never starts with a token that dies on its way.
REFRESH_MARGIN = 300
MAX_PARAMETER_LENGTH = 2000


def flow_of(element: Element) -> OAuthFlow:
    flow = element.hooks.oauth
    if flow is None:
        raise bad_request(f"Element {element.key} does not authenticate with OAuth")
    return flow


def _checked_url(runtime: Runtime, key: str, url: str) -> str:
    """An OAuth URL or override: http(s), and an address the egress policy allows (D32)."""
    try:
        runtime.egress.policy.check_url(url)
    except EgressDenied as exc:
        raise bad_request(
            f"{key} points at an address Hubgate may not reach ({exc}); see HUBGATE_EGRESS_ALLOW"
        ) from None
    return url


def authorize_url(runtime: Runtime, element: Element, query: Mapping[str, str]) -> dict[str, str]:
    """``GET /elements/{keyOrId}/oauth/url`` (D56): where the person consents."""
    flow = flow_of(element)
    manifest = element.manifest
    # Checked here rather than in the route's schema, so one rule names the parameter.
    long = sorted(name for name, value in query.items() if len(value) > MAX_PARAMETER_LENGTH)
    if long:
        raise bad_request(f"{', '.join(long)} longer than {MAX_PARAMETER_LENGTH} characters")
    missing = [name for name in ("apiKey", "apiSecret", "callbackUrl") if not query.get(name)]
    if missing:
        raise bad_request(f"Missing query parameter: {', '.join(missing)}", missing=missing)
    callback = query["callbackUrl"]
    cfg.validate_url(callback, "callbackUrl")
    defaults = manifest.defaults()
    for key in URL_OVERRIDES:
        if query.get(key):
            cfg.validate_url(query[key], key)
            _checked_url(runtime, key, query[key])
    authorization = query.get(AUTHORIZATION_URL) or defaults.get(AUTHORIZATION_URL) or ""
    if not authorization:
        raise bad_request(f"Element {element.key} has no {AUTHORIZATION_URL}; give one")
    scope = query.get("scope") or defaults.get(SCOPE) or ""
    # Open Connectors' state defaults to the element's key.
    state = query.get("state") or element.key
    url = flow.authorize_url(authorization, query["apiKey"], callback, scope, state)
    return {"oauthUrl": url, "element": element.key}


def token_values(tokens: OAuthTokens, now: float) -> cfg.Configuration:
    """The configuration entries Hubgate keeps for a token answer (D55)."""
    expires = None if tokens.expires_in is None else str(int(now) + tokens.expires_in)
    return {
        cfg.OAUTH_TOKEN: tokens.access_token,
        cfg.OAUTH_REFRESH_TOKEN: tokens.refresh_token,
        cfg.OAUTH_EXPIRES: expires,
        cfg.OAUTH_FAILURE: None,
    }


async def _vendor_step(
    runtime: Runtime, element: Element, step: Callable[[], Awaitable[OAuthTokens]]
) -> OAuthTokens:
    """Run a flow step, its egress failures said as Hubgate says any vendor's."""
    name = element.manifest.vendor_name
    try:
        return await step()
    except EgressDenied:
        raise bad_request(
            f"Configuration {TOKEN_URL} points at an address Hubgate may not reach;"
            " see HUBGATE_EGRESS_ALLOW"
        ) from None
    except EgressTimeout:
        raise HubgateError(504, f"{name} did not answer in time") from None
    except EgressError:
        raise HubgateError(502, f"{name} could not be reached") from None


async def obtain_tokens(
    runtime: Runtime, element: Element, config: cfg.Configuration, code: str | None
) -> cfg.Configuration:
    """Exchange the callback's code (``providerData.code``) for tokens: ``config`` with them.

    A refused code raises the flow's 400 with the provider's fields, and nothing is saved.
    """
    flow = flow_of(element)
    if not code:
        raise bad_request(
            "You must provide an OAuth code in order to create an instance of this element"
        )
    for key in (AUTHORIZATION_URL, TOKEN_URL):
        if config.get(key):
            cfg.validate_url(config[key] or "", f"Configuration {key}")
    now = time.time()
    tokens = await _vendor_step(
        runtime, element, lambda: flow.exchange(runtime.egress, config, code)
    )
    return {**config, **token_values(tokens, now)}


def _uses_oauth(instance: ResolvedInstance) -> bool:
    return instance.element.hooks.oauth is not None and bool(instance.config.get(cfg.OAUTH_TOKEN))


def _due(config: Mapping[str, str | None], now: float) -> bool:
    expires = config.get(cfg.OAUTH_EXPIRES)
    if not expires or not config.get(cfg.OAUTH_REFRESH_TOKEN):
        return False
    return int(expires) - REFRESH_MARGIN <= now


def _refused(instance: ResolvedInstance) -> HubgateError:
    reason = instance.config.get(cfg.OAUTH_FAILURE) or ""
    return HubgateError(
        502,
        f"Instance {instance.id} must be authenticated again: {reason}",
        extra={"invalidReason": reason},
    )


async def with_token(
    runtime: Runtime, instance: ResolvedInstance, run: Callable[[ResolvedInstance], Awaitable[T]]
) -> T:
    """Run a vendor call with a live access token, without the caller noticing a refresh.

    The token is refreshed first when it expires within :data:`REFRESH_MARGIN`; a call the
    vendor refuses with one of the flow's ``expired_codes`` (a token revoked or expired sooner
    than it said) is made once more after a refresh. Elements without OAuth run as they are.
    """
    if not _uses_oauth(instance):
        return await run(instance)
    if instance.config.get(cfg.OAUTH_FAILURE):
        raise _refused(instance)
    if _due(instance.config, time.time()):
        instance = await refresh(runtime, instance, force=False)
    try:
        return await run(instance)
    except HubgateError as error:
        codes = flow_of(instance.element).expired_codes
        if error.extra.get("providerCode") not in codes or not instance.config.get(
            cfg.OAUTH_REFRESH_TOKEN
        ):
            raise
    return await run(await refresh(runtime, instance, force=True))


async def refresh(runtime: Runtime, instance: ResolvedInstance, *, force: bool) -> ResolvedInstance:
    """Refresh the instance's tokens under its row lock; ``instance`` with the new ones.

    Its own unit of work, committed here whatever the call that needed it does next: the vendor
    has revoked the old refresh token by then (Slack's rotation), so the new one must be kept.
    A process that waited on the lock finds the tokens another one got and uses those. A
    refusal marks the instance not valid with the vendor's reason (D56); a vendor that cannot
    be reached leaves it as it is.
    """
    element = instance.element
    flow = flow_of(element)
    async with runtime.sessions() as session:
        row = await InstanceRepository(session).lock_by_id(instance.id)
        if row is None:
            raise HubgateError(404, f"No instance found with id {instance.id}")
        config = decrypt_configuration(runtime.keyring, row)
        version = row.version  # read now: a rollback expires the row
        changed = config.get(cfg.OAUTH_TOKEN) != instance.config.get(cfg.OAUTH_TOKEN)
        if changed or not (force or _due(config, time.time())):
            # Another process refreshed while this one waited for the lock: its tokens serve.
            await session.rollback()
            return dataclasses.replace(instance, config=config, version=version)
        if config.get(cfg.OAUTH_FAILURE):
            await session.rollback()
            raise _refused(dataclasses.replace(instance, config=config))
        now = time.time()
        refresh_token = config.get(cfg.OAUTH_REFRESH_TOKEN) or ""
        try:
            tokens = await _vendor_step(
                runtime, element, lambda: flow.refresh(runtime.egress, config, refresh_token)
            )
        except HubgateError as error:
            if error.status != 400:
                raise
            reason = error.extra.get("providerCode") or error.message
            name = element.manifest.vendor_name
            config[cfg.OAUTH_FAILURE] = f"{name} refused the token refresh: {reason}"
            row.valid = False
            await _keep(runtime, session, element, row, config)
            raise vendor_error(
                502,
                f"{name} refused to refresh the instance's OAuth token; authenticate again",
                provider_message=error.extra.get("providerMessage"),
                provider_code=error.extra.get("providerCode"),
                provider_status=error.extra.get("providerStatus"),
            ) from None
        config.update(token_values(tokens, now))
        await _keep(runtime, session, element, row, config)
        return dataclasses.replace(instance, config=config, version=row.version)


async def _keep(
    runtime: Runtime,
    session: AsyncSession,
    element: Element,
    row: Instance,
    config: cfg.Configuration,
) -> None:
    """Write the tokens and tell every process's token cache that the instance changed."""
    store_configuration(runtime.keyring, element, row, config)
    row.version += 1
    mark_changed(session, row)
    await InstanceRepository(session).save(row)
    await session.commit()
