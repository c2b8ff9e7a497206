"""What console pages show and do, on top of the instances service; no SQL, no commit."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console import forms
from hubgate.console.sections import load_sections
from hubgate.db.tenancy import Tenant
from hubgate.elements.manifest import Manifest
from hubgate.elements.registry import Element, hub_of
from hubgate.hub.docs import API_PREFIX as DOCS_API_PREFIX
from hubgate.hub.docs import element_openapi
from hubgate.instances import configuration as cfg
from hubgate.instances import oauth
from hubgate.instances import service as instances
from hubgate.instances.models import Instance
from hubgate.instances.presenter import instance_json
from hubgate.instances.repository import InstanceRepository
from hubgate.instances.schemas import InstanceCreate, InstancePatch
from hubgate.kit.crypto import DecryptionError
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class CatalogEntry:
    key: str
    name: str
    description: str
    vendor_name: str
    hub_key: str
    hub_name: str
    authentication_type: str

    @property
    def search_text(self) -> str:
        return " ".join(
            [self.key, self.name, self.description, self.vendor_name, self.hub_key, self.hub_name]
        ).lower()


def catalog_entry(manifest: Manifest) -> CatalogEntry:
    hub = hub_of(manifest)
    return CatalogEntry(
        key=manifest.key,
        name=manifest.name,
        description=manifest.description,
        vendor_name=manifest.vendor_name,
        hub_key=hub.key,
        hub_name=hub.name,
        authentication_type=manifest.authentication_type,
    )


def catalog(runtime: Runtime, query: str) -> list[CatalogEntry]:
    """The elements whose name, key, vendor, hub or description contain every word asked for."""
    words = query.lower().split()
    entries = [catalog_entry(e.manifest) for e in runtime.registry]
    return [e for e in entries if all(w in e.search_text for w in words)]


def element(runtime: Runtime, key: str) -> Element | None:
    # The catalog links by key; a numeric id in the address would name the same element twice.
    found = runtime.registry.find(key)
    return found if found is not None and found.key == key else None


@dataclass(frozen=True)
class Outcome:
    """A form's result: the instance when it worked, or the errors to show beside the fields."""

    instance: Instance | None
    errors: forms.FormErrors


async def authenticate(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    found: Element,
    submitted: forms.Submitted,
    *,
    code: str | None = None,
) -> Outcome:
    """Provision through the same service the API uses, so every rule applies unchanged;
    ``code`` is an OAuth element's, from the vendor's redirect (D56)."""
    request: dict[str, Any] = {
        "element": {"key": found.key},
        "name": submitted.name or None,
        "tags": submitted.tags,
        "configuration": forms.for_create(submitted),
    }
    if code is not None:
        request["providerData"] = {"code": code}
    try:
        body = InstanceCreate.model_validate(request)
    except ValidationError as exc:
        return Outcome(None, forms.errors_from_validation(exc))
    try:
        instance, _ = await instances.provision(session, runtime, tenant, body)
    except HubgateError as exc:
        return Outcome(None, forms.errors_from(found.manifest, exc))
    return Outcome(instance, forms.FormErrors())


async def change(
    session: AsyncSession, runtime: Runtime, instance: Instance, submitted: forms.Submitted
) -> Outcome:
    manifest = runtime.registry.get(instance.element_key).manifest
    if not submitted.name:
        return Outcome(
            None,
            forms.FormErrors(
                fields={forms.NAME_FIELD: "Give the instance a name."},
                summary="The instance needs a name.",
            ),
        )
    try:
        patch = InstancePatch.model_validate(
            {
                "name": submitted.name,
                "tags": submitted.tags,
                "configuration": forms.for_update(manifest, submitted),
            }
        )
    except ValidationError as exc:
        return Outcome(None, forms.errors_from_validation(exc))
    try:
        await instances.update(session, runtime, instance, patch, replace=False)
    except HubgateError as exc:
        return Outcome(None, forms.errors_from(manifest, exc))
    return Outcome(instance, forms.FormErrors())


async def owned(session: AsyncSession, tenant: Tenant, instance_id: int) -> Instance | None:
    """The tenant's instance, or None for one that does not exist or is someone else's (D4)."""
    try:
        return await instances.get_owned(session, tenant, instance_id)
    except HubgateError as exc:
        if exc.status == 404:
            return None
        raise


@dataclass(frozen=True)
class ConfigRow:
    key: str
    label: str
    value: str | None
    secret: bool


async def instance_view(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    instance: Instance,
    *,
    with_token: bool,
) -> dict[str, Any]:
    """The instance as the API shows it (secrets masked by the same presenter), for a page."""
    found = runtime.registry.get(instance.element_key)
    body = instance_json(
        instance,
        found,
        runtime.keyring,
        owner=await InstanceRepository(session).owner(instance),
        base_url=runtime.settings.base_url,
    )
    token = body.pop("token")
    manifest = found.manifest
    rows = [
        ConfigRow(
            key=entry.key,
            label=entry.name,
            value=body["configuration"].get(entry.key),
            secret=forms.is_secret(manifest, entry),
        )
        for entry in forms.visible_entries(manifest)
    ]
    return {
        "instance": body,
        "element": catalog_entry(manifest),
        "config_rows": rows,
        "created": when(instance.created_at),
        "token": token if with_token else None,
        "sections": await load_sections(session, runtime, tenant, instance),
    }


async def set_trace_logging(
    session: AsyncSession, runtime: Runtime, instance: Instance, enabled: bool
) -> None:
    patch = InstancePatch.model_validate({"traceLoggingEnabled": enabled})
    await instances.update(session, runtime, instance, patch, replace=False)


def token_of(runtime: Runtime, instance: Instance) -> str:
    return instances.decrypt_token(runtime.keyring, instance)


def openapi_document(runtime: Runtime, instance: Instance) -> dict[str, Any]:
    """The instance's OpenAPI document, as ``GET /instances/{id}/docs`` builds it (D151)."""
    found = runtime.registry.get(instance.element_key)
    document = element_openapi(found, runtime.settings.base_url, instance_id=instance.id)
    # Relative, so "Try it out" calls the host the person is browsing, whatever address
    # HUBGATE_PUBLIC_URL names: another origin would be refused by the page's CSP.
    document["servers"] = [{"url": DOCS_API_PREFIX, "description": "This Hubgate"}]
    return document


def current_values(instance: Instance) -> dict[str, str | None]:
    """The stored configuration for the edit form; secrets are never put into a page."""
    return dict(instance.configuration)


@dataclass(frozen=True)
class InstanceRow:
    id: int
    name: str
    element_key: str
    element_name: str
    tags: list[str]
    disabled: bool
    created: str


@dataclass(frozen=True)
class InstanceList:
    rows: list[InstanceRow]
    elements: list[CatalogEntry]
    tags: list[str]


def _row(runtime: Runtime, instance: Instance) -> InstanceRow:
    found = runtime.registry.find(instance.element_key)
    return InstanceRow(
        id=instance.id,
        name=instance.name,
        element_key=instance.element_key,
        element_name=found.manifest.name if found else instance.element_key,
        tags=list(instance.tags),
        disabled=instance.disabled,
        created=when(instance.created_at),
    )


async def instance_list(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, *, element_key: str, tag: str
) -> InstanceList:
    repo = InstanceRepository(session)
    everything: Sequence[Instance] = await repo.list(tenant)
    tags = sorted({t for i in everything for t in i.tags}, key=str.lower)
    elements = [catalog_entry(e.manifest) for e in runtime.registry]
    if element_key or tag:
        chosen = await repo.list(tenant, tags=[tag] if tag else (), element_key=element_key or None)
    else:
        chosen = everything
    return InstanceList(rows=[_row(runtime, i) for i in chosen], elements=elements, tags=tags)


# -- OAuth elements: the consent round trip (D56) -------------------------------------------

# A round trip left unfinished for longer than this starts again.
OAUTH_PENDING_SECONDS = 600


def oauth_callback_url(runtime: Runtime, key: str) -> str:
    """Where the vendor sends the person back to the console: the Redirect URL to register."""
    return f"{runtime.settings.base_url}/catalog/{key}/callback"


def oauth_form_values(runtime: Runtime, found: Element) -> dict[str, str | None]:
    values = found.manifest.defaults()
    if found.hooks.oauth is not None:
        values[oauth.CALLBACK_URL] = oauth_callback_url(runtime, found.key)
    return values


def consent_url(runtime: Runtime, found: Element, submitted: forms.Submitted, state: str) -> str:
    """The vendor's consent page for what the form says; a HubgateError for a form that
    cannot work (its errors go beside the fields, as a provisioning's do)."""
    manifest = found.manifest
    given = cfg.normalize(manifest, forms.for_create(submitted))
    config = cfg.merged(manifest, manifest.defaults(), given)
    cfg.validate(manifest, config, poll_floor=runtime.settings.poll_interval_floor)
    query = {
        "apiKey": config.get(oauth.API_KEY) or "",
        "apiSecret": config.get(oauth.API_SECRET) or "",
        "callbackUrl": config.get(oauth.CALLBACK_URL) or "",
        "scope": config.get(oauth.SCOPE) or "",
        "state": state,
    }
    for key in oauth.URL_OVERRIDES:
        query[key] = config.get(key) or ""
    return oauth.authorize_url(runtime, found, {k: v for k, v in query.items() if v})["oauthUrl"]


@dataclass(frozen=True)
class PendingOAuth:
    """A submitted form waiting for the vendor's code, and the state that must come back."""

    state: str
    submitted: forms.Submitted


def _pending_aad(user_id_hash: str, key: str) -> str:
    # Bound to the signed-in session and the element: another person's cookie opens nothing.
    return f"console:oauth:{user_id_hash}:{key}"


def seal_pending(runtime: Runtime, user_id_hash: str, key: str, pending: PendingOAuth) -> str:
    """The pending form as a cookie value, encrypted (it holds the client secret)."""
    payload = {
        "state": pending.state,
        "expires": int(time.time()) + OAUTH_PENDING_SECONDS,
        "name": pending.submitted.name,
        "tags": pending.submitted.tags,
        "configuration": pending.submitted.configuration,
    }
    return runtime.keyring.encrypt(json.dumps(payload), _pending_aad(user_id_hash, key))


def open_pending(
    runtime: Runtime, user_id_hash: str, key: str, sealed: str | None
) -> PendingOAuth | None:
    """The pending form of this person and element; None when missing, foreign or stale."""
    if not sealed:
        return None
    try:
        payload = json.loads(runtime.keyring.decrypt(sealed, _pending_aad(user_id_hash, key)))
    except (DecryptionError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("expires", 0) < time.time():
        return None
    submitted = forms.Submitted(
        name=str(payload.get("name") or ""),
        tags=[str(t) for t in payload.get("tags") or []],
        configuration=dict(payload.get("configuration") or {}),
    )
    return PendingOAuth(str(payload.get("state") or ""), submitted)
