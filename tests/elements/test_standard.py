"""The standard connector suite (issue 10): every registered element passes the same checks.

Parametrized over every element the registry finds: Hubgate's own (their entry points) and
those of the packages installed into a ``site`` folder beside this suite (``*/site``, each a
``.dist-info`` with a ``hubgate.elements`` entry point), as a third-party connector is
installed. Each element's vendor is driven by its :class:`tests.elements.standard.StandardCase`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from hubgate.elements.manifest import BasicAuth, Manifest, OAuth2Auth
from hubgate.elements.registry import discover
from hubgate.elements.sdk import Element
from hubgate.instances.configuration import ALWAYS_SECRET, secret_keys
from tests.conftest import Api, RunningHubgate
from tests.elements.standard import BUILT_IN, CaseFactory, StandardCase
from tests.logwatch import remember_secret, run_log

SITES = sorted(Path(__file__).parent.glob("*/site"))
REGISTRY = discover(SITES)
KEYS = [e.key for e in REGISTRY]
HOOK_EVENTS = {"event.notification.enabled": True, "event.vendor.type": "webhook"}


def _installed_cases() -> dict[str, CaseFactory]:
    """The ``STANDARD_CASE`` of every element installed into a site folder."""
    found: dict[str, CaseFactory] = {}
    for dist in distributions(path=[str(site) for site in SITES]):
        for entry in dist.entry_points:
            if entry.group == "hubgate.elements":
                found[entry.name] = importlib.import_module(entry.module).STANDARD_CASE
    return found


CASES: dict[str, CaseFactory] = {**BUILT_IN, **_installed_cases()}


def test_the_suite_covers_every_registered_element() -> None:
    assert {"twiliov2", "sendgrid", "slack", "loopback"} <= set(KEYS)
    missing = sorted(set(KEYS) - set(CASES))
    assert not missing, f"no StandardCase for {missing}: add one (tests/elements/standard.py)"


@dataclass
class Standard:
    element: Element
    case: StandardCase
    api: Api
    created: list[int] = field(default_factory=list)

    @property
    def manifest(self) -> Manifest:
        return self.element.manifest

    def create(self, name: str, configuration: dict[str, Any]) -> dict[str, Any]:
        """A create request; an OAuth element's carries the code its case obtained."""
        body: dict[str, Any] = {
            "element": {"key": self.element.key},
            "name": name,
            "configuration": configuration,
        }
        provider = self.case.provider_data()
        if provider is not None:
            body["providerData"] = provider
        return body

    async def provision(self, *, expect: int = 200, **extra: Any) -> dict[str, Any]:
        configuration = {**self.case.configuration(), **extra}
        request = self.create(f"standard {self.element.key}", configuration)
        response = await self.api.post("instances", json={**request, "traceLoggingEnabled": True})
        assert response.status == expect, response.text
        body: dict[str, Any] = response.body
        if response.status == 200:
            self.created.append(body["id"])
        return body

    def hub(self, instance: dict[str, Any]) -> Api:
        return self.api.with_auth(f"Element {instance['token']}")

    def path(self, resource: str) -> str:
        return f"hubs/{self.manifest.hub}/{resource}"

    def secrets(self) -> list[str]:
        keys = secret_keys(self.manifest)
        return [str(v) for k, v in self.case.configuration().items() if k in keys and v]


@pytest.fixture(params=KEYS)
async def standard(
    request: pytest.FixtureRequest,
    api: Api,
    hubgate: RunningHubgate,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Standard]:
    element = REGISTRY.get(request.param)
    case = CASES[element.key]()
    # The running app's catalog, with the elements installed beside the suite.
    monkeypatch.setattr(hubgate.runtime, "registry", REGISTRY)
    await case.start()
    running = Standard(element, case, api)
    yield running
    # Gone while the catalog still knows the element: later tests of the shared app read
    # every instance with its element's manifest.
    for instance_id in running.created:
        assert (await api.delete(f"instances/{instance_id}")).status == 200
    await case.stop()


@pytest.mark.parametrize("key", KEYS)
def test_manifest_lint(key: str) -> None:
    element = REGISTRY.get(key)
    manifest = element.manifest
    entries = {e.key: e for e in manifest.configuration}
    # Secrets are flagged: every password field, and every key the vendor auth sends but a
    # basic-auth user name.
    credentials = (
        manifest.auth.keys[1:] if isinstance(manifest.auth, BasicAuth) else (manifest.auth.keys)
    )
    for entry in manifest.configuration:
        if entry.type == "PASSWORD":
            assert entry.secret, f"{entry.key} is a password but not secret"
        if entry.secret:
            assert entry.default_value is None, f"secret {entry.key} has a default"
    for name in credentials:
        if isinstance(manifest.auth, OAuth2Auth):
            # The token the provisioning obtains is Hubgate's to keep, secret and in no
            # answer, not an entry a caller sets (D290).
            assert name in ALWAYS_SECRET, f"OAuth token {name} is not kept secret"
            continue
        assert name in entries, f"auth names {name}, which is not configuration"
        assert entries[name].secret, f"{name} carries a credential but is not secret"
    # A check call whose placeholders the configuration fills.
    assert manifest.check.path.startswith("/")
    for placeholder in _placeholders(manifest.check.path):
        assert placeholder in entries, f"the check call needs {placeholder}"
    assert manifest.base_url_key in entries
    # Every hook an operation names exists.
    for resource in manifest.resources:
        for method, operation in resource.operations.items():
            where = f"{method} {resource.path}"
            if operation.hook is not None:
                assert operation.hook in element.hooks.operations, where
            if operation.request_hook is not None:
                assert operation.request_hook in element.hooks.requests, where
            for placeholder in _placeholders(operation.vendor_path):
                known = {p.name for p in operation.parameters} | set(entries) | {"id", "subId"}
                assert placeholder in known, f"{where}: {{{placeholder}}} is filled by nothing"
    if "webhook" in manifest.event_methods:
        assert element.hooks.webhook is not None


def _placeholders(path: str) -> list[str]:
    return [part.split("}", 1)[0] for part in path.split("{")[1:]]


async def test_docs_are_generated_and_valid(standard: Standard) -> None:
    response = await standard.api.with_auth(None).get(f"elements/{standard.element.key}/docs")
    assert response.status == 200, response.text
    validate(response.body)
    paths = response.body["paths"]
    for resource in standard.manifest.resources:
        documented = paths[f"/hubs/{standard.manifest.hub}/{resource.path}"]
        for method, operation in resource.operations.items():
            if operation.body != "none":
                assert "requestBody" in documented[method.lower()], f"{method} {resource.path}"


async def test_the_credential_check_maps_200_401_429(standard: Standard) -> None:
    created = await standard.provision()
    assert created["element"]["key"] == standard.element.key
    refused = await standard.api.post(
        "instances", json=standard.create("refused", standard.case.refused_configuration())
    )
    assert refused.status == 400, refused.text
    assert "providerMessage" in refused.body
    standard.case.rate_limit_next()
    limited = await standard.api.post(
        "instances", json=standard.create("limited", standard.case.configuration())
    )
    assert limited.status == 429, limited.text
    assert limited.headers["Retry-After"].isdigit()


async def test_a_list_is_read_to_the_end_exactly_once(standard: Standard) -> None:
    hub = standard.hub(await standard.provision())
    made = await standard.case.make_records(5)
    seen: list[str] = []
    params = {"pageSize": "2"}
    pages = 0
    while True:
        page = await hub.get(standard.path(standard.case.list_path), params=params)
        assert page.status == 200, page.text
        assert page.headers["Elements-Returned-Count"] == str(len(page.body))
        assert len(page.body) <= 2
        seen.extend(str(r[standard.case.id_field]) for r in page.body)
        pages += 1
        token = page.headers.get("Elements-Next-Page-Token")
        if token is None:
            break
        params = {"pageSize": "2", "nextPage": token}
    assert len(seen) == len(set(seen)), f"a record came twice: {seen}"
    assert made <= set(seen)
    assert pages >= 3


async def test_one_write(standard: Standard) -> None:
    hub = standard.hub(await standard.provision())
    written = await hub.post(
        standard.path(standard.case.write_path), json=standard.case.write_body()
    )
    assert written.status == 200, written.text
    assert standard.case.written(written.body)


async def test_vendor_webhooks_good_tampered_replayed(standard: Standard) -> None:
    instance = await standard.provision(**HOOK_EVENTS)
    url = instance["eventsCallbackUrl"]
    path = url[len(standard.api.base) :]
    vendor = standard.api.with_auth(None)
    events_path = f"instances/{instance['id']}/events"

    async def events() -> int:
        return len((await standard.api.get(events_path)).body)

    body, headers = standard.case.tampered(url)
    assert (await vendor.post(path, data=body, headers=headers)).status == 403
    assert await events() == 0
    body, headers = standard.case.webhook(url)
    good = await vendor.post(path, data=body, headers=headers)
    assert good.status == 200, good.text
    assert await events() == 1
    # The vendor retrying the same call, and an attacker replaying it later: no second event.
    assert (await vendor.post(path, data=body, headers=headers)).status == 200
    body, headers = standard.case.replayed(url)
    replayed = await vendor.post(path, data=body, headers=headers)
    assert replayed.status in (200, 403), replayed.text
    assert await events() == 1


async def test_every_secret_is_redacted_in_logs_and_trace_logs(standard: Standard) -> None:
    instance = await standard.provision()
    hub = standard.hub(instance)
    await standard.case.make_records(2)
    assert (await hub.get(standard.path(standard.case.list_path))).status == 200
    await hub.post(standard.path(standard.case.write_path), json=standard.case.write_body())
    secrets = standard.secrets()
    assert secrets, "the case configures no secret, so the check would prove nothing"
    remember_secret(*secrets)
    shown = await standard.api.get(f"instances/{instance['id']}")
    traces = await standard.api.get(f"instances/{instance['id']}/logs")
    assert traces.status == 200, traces.text
    assert len(traces.body) >= 2
    logged = run_log().read_text(encoding="utf-8", errors="replace")
    for secret in secrets:
        assert secret not in shown.text
        assert secret not in traces.text
        assert secret not in logged
