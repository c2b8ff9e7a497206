"""Provisioning and changing instances: the business rules, no SQL, no commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.elements.registry import Element
from hubgate.instances import configuration as cfg
from hubgate.instances import oauth
from hubgate.instances.changes import mark_changed, saved
from hubgate.instances.credentials import check_credentials
from hubgate.instances.models import Instance
from hubgate.instances.repository import InstanceRepository
from hubgate.instances.schemas import InstanceCreate, InstanceFlags, InstancePatch
from hubgate.instances.secrets import decrypt_configuration as decrypt_configuration
from hubgate.instances.secrets import secret_aad as secret_aad
from hubgate.instances.secrets import store_configuration as store_configuration
from hubgate.kit.crypto import Keyring, new_secret
from hubgate.kit.egress import EgressDenied
from hubgate.kit.errors import HubgateError, bad_request, unauthorized
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user


def token_aad(instance_id: int) -> str:
    return f"instances:{instance_id}:token"


@dataclass(frozen=True)
class Decrypted:
    """An instance with its configuration in clear, for the vendor calls that need it."""

    instance: Instance
    element: Element
    configuration: cfg.Configuration


def resolve_element(runtime: Runtime, body: InstanceCreate, path_key: str | None) -> Element:
    if path_key is not None:
        return runtime.registry.get(path_key)
    ref = body.element
    if ref is None or (ref.key is None and ref.id is None):
        raise bad_request("Missing element: give element.key or element.id")
    element = runtime.registry.find(ref.key if ref.key is not None else int(ref.id or 0))
    if element is None:
        raise bad_request(f"Unknown element {ref.key if ref.key is not None else ref.id}")
    return element


def decrypt_token(keyring: Keyring, instance: Instance) -> str:
    return keyring.decrypt(instance.token_ciphertext, token_aad(instance.id))


def _apply_flags(instance: Instance, flags: InstanceFlags) -> None:
    if flags.caching_enabled is not None:
        instance.caching_enabled = flags.caching_enabled
    if flags.cache_time_to_live is not None:
        instance.cache_time_to_live = flags.cache_time_to_live
    if flags.max_cache_size is not None:
        instance.max_cache_size = flags.max_cache_size
    if flags.trace_logging_enabled is not None:
        instance.trace_logging_enabled = flags.trace_logging_enabled


def _credentials_changed(element: Element, old: cfg.Configuration, new: cfg.Configuration) -> bool:
    manifest = element.manifest
    return any(old.get(k) != new.get(k) for k in manifest.credential_keys)


CALLBACK_URL_KEY = "event.notification.callback.url"


def check_callback_url(runtime: Runtime, config: cfg.Configuration) -> None:
    """Refuse a callback URL the egress policy refuses whatever it resolves to (D32).

    Literal addresses and numeric spellings are judged now; a host name is judged when a
    delivery connects, on the address it then resolves to.
    """
    url = config.get(CALLBACK_URL_KEY)
    if not url:
        return
    try:
        runtime.egress.policy.check_url(url)
    except EgressDenied as exc:
        raise bad_request(
            f"Configuration {CALLBACK_URL_KEY} points at an address Hubgate may not reach"
            f" ({exc}); see HUBGATE_EGRESS_ALLOW"
        ) from None


async def provision(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    body: InstanceCreate,
    *,
    path_key: str | None = None,
) -> tuple[Instance, Element]:
    element = resolve_element(runtime, body, path_key)
    manifest = element.manifest
    config = cfg.merged(manifest, manifest.defaults(), cfg.normalize(manifest, body.configuration))
    cfg.validate(manifest, config, poll_floor=runtime.settings.poll_interval_floor)
    check_callback_url(runtime, config)
    name = cfg.clean_text(body.name, "name") if body.name else f"{manifest.name} instance"
    # Without tags the name is the one tag (D48), cut to clean_tags' length cap (D210).
    tags = cfg.clean_tags(body.tags) if body.tags else cfg.clean_tags([name[:100]])
    if element.hooks.oauth is not None:
        code = body.provider_data.code if body.provider_data is not None else None
        config = await oauth.obtain_tokens(runtime, element, config, code)
    await check_credentials(runtime.egress, runtime.settings, element, config)

    repo = InstanceRepository(session)
    instance_id = await repo.next_id()
    token = new_secret()
    instance = Instance(
        id=instance_id,
        organization_id=tenant.organization_id,
        account_id=tenant.account_id,
        user_id=tenant.user_id,
        element_key=manifest.key,
        name=name,
        tags=tags,
        token_hash=runtime.keyring.hmac_digest(token),
        token_ciphertext=runtime.keyring.encrypt(token, token_aad(instance_id)),
        valid=True,
        disabled=False,
        caching_enabled=False,
        cache_time_to_live=0,
        max_cache_size=0,
        trace_logging_enabled=False,
        version=1,
    )
    _apply_flags(instance, body)
    store_configuration(runtime.keyring, element, instance, config)
    await repo.add(instance)
    await saved(session, instance)
    return instance, element


async def get_owned(session: AsyncSession, tenant: Tenant, instance_id: int) -> Instance:
    # Ids past BIGINT cannot exist; asking the database would only raise.
    instance = (
        await InstanceRepository(session).get(tenant, instance_id)
        if 0 < instance_id < 2**63
        else None
    )
    if instance is None:
        raise HubgateError(404, f"No instance found with id {instance_id}")
    return instance


async def by_token(
    session: AsyncSession,
    runtime: Runtime,
    credentials: Credentials,
    *,
    allow_disabled: bool = False,
) -> Instance:
    """The instance an ``Element`` token names; User/Organization, when given, must own it.

    A disabled instance answers 403 (D8) to everything but the call that enables it again.
    """
    if credentials.element is None:
        raise unauthorized()
    instance = await InstanceRepository(session).by_token_hash(
        runtime.keyring.hmac_digest(credentials.element)
    )
    if instance is None:
        raise unauthorized()
    if credentials.user is not None or credentials.organization is not None:
        tenant = await authenticate_user(session, runtime.keyring, credentials)
        ensure_owner(tenant, instance.organization_id, instance.account_id)
    if not allow_disabled:
        ensure_enabled(instance.id, disabled=instance.disabled)
    return instance


def ensure_owner(tenant: Tenant, organization_id: int, account_id: int) -> None:
    """An Element token used beside User/Organization secrets must belong to that tenant (D5)."""
    if (tenant.organization_id, tenant.account_id) != (organization_id, account_id):
        raise unauthorized()


def ensure_enabled(instance_id: int, *, disabled: bool) -> None:
    """A disabled instance answers 403 (D8)."""
    if disabled:
        raise HubgateError(403, f"Instance {instance_id} is disabled; enable it to use it again")


async def update(
    session: AsyncSession,
    runtime: Runtime,
    instance: Instance,
    body: InstancePatch,
    *,
    replace: bool,
) -> Element:
    """PUT (``replace``) swaps name, tags and configuration; PATCH changes what it names.

    The merge starts from the row as it is now, locked: never from the instance as the
    caller found it (another request may have changed it since, or deleted it: 404).
    """
    await lock(session, instance)
    element = runtime.registry.get(instance.element_key)
    manifest = element.manifest
    current = decrypt_configuration(runtime.keyring, instance)
    given = cfg.normalize(manifest, body.configuration or {})
    if replace:
        # Secrets sent back masked keep their stored value even on a full replacement.
        base = manifest.defaults()
        # The tokens an OAuth element obtained are no caller's to replace (D56).
        base.update({key: current.get(key) for key in cfg.OAUTH_KEYS if key in current})
        for key in cfg.secret_keys(manifest):
            if given.get(key) == cfg.MASK:
                base[key] = current.get(key)
        config = cfg.merged(manifest, base, given)
    else:
        config = cfg.merged(manifest, current, given)
    cfg.validate(manifest, config, poll_floor=runtime.settings.poll_interval_floor)
    check_callback_url(runtime, config)
    if body.name is None and replace:
        raise bad_request("Missing name: PUT replaces the whole instance")
    name = cfg.clean_text(body.name, "name") if body.name is not None else instance.name
    tags = cfg.clean_tags(body.tags) if body.tags is not None else ([] if replace else None)
    if _credentials_changed(element, current, config):
        await check_credentials(runtime.egress, runtime.settings, element, config)
    instance.name = name
    if tags is not None:
        instance.tags = tags
    _apply_flags(instance, body)
    # Valid again: a refused token refresh is tried once more on the next call.
    config.pop(cfg.OAUTH_FAILURE, None)
    store_configuration(runtime.keyring, element, instance, config)
    instance.valid = True
    await _save(session, instance)
    return element


async def lock(session: AsyncSession, instance: Instance) -> None:
    """Re-read the instance's row and hold it until the transaction ends; 404 once deleted."""
    if not await InstanceRepository(session).lock(instance):
        raise HubgateError(404, f"No instance found with id {instance.id}")


async def _save(session: AsyncSession, instance: Instance) -> None:
    instance.version += 1
    mark_changed(session, instance)
    await InstanceRepository(session).save(instance)
    await saved(session, instance)


async def set_enabled(session: AsyncSession, instance: Instance, enabled: bool) -> None:
    await lock(session, instance)
    instance.disabled = not enabled
    await _save(session, instance)


async def delete(session: AsyncSession, instance: Instance) -> None:
    mark_changed(session, instance)
    if not await InstanceRepository(session).remove(instance):
        # Another request deleted it first.
        raise HubgateError(404, f"No instance found with id {instance.id}")


async def rewrap_all(session: AsyncSession, keyring: Keyring) -> int:
    """Move every ciphertext of every instance onto the primary key; returns how many moved."""
    moved = 0
    for instance in await InstanceRepository(session).all_for_rewrap():
        if keyring.needs_rewrap(instance.token_ciphertext):
            instance.token_ciphertext = keyring.rewrap(
                instance.token_ciphertext, token_aad(instance.id)
            )
            moved += 1
        secrets = dict(instance.secrets)
        for key, ciphertext in secrets.items():
            if keyring.needs_rewrap(ciphertext):
                secrets[key] = keyring.rewrap(ciphertext, secret_aad(instance.id, key))
                moved += 1
        instance.secrets = secrets
    await session.flush()
    return moved
