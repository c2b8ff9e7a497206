"""Two tenants for fuzzing: A, who asks, and B, whose objects A must never see.

Each has its own organization, its own Twilio account on the simulator and instances of its
own. B's names, tags, tokens, secrets and Twilio credentials are unique random strings, so
finding any of them in an answer to A is proof of a leak, not a coincidence.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, TenantCredentials, new_tenant, twilio_instance_body


@dataclass
class Party:
    """A tenant with its instances as they were answered on creation."""

    credentials: TenantCredentials
    account_sid: str
    auth_token: str
    sim: TwilioSimulator
    instances: list[dict[str, Any]] = field(default_factory=list)
    # SIDs of messages in the party's own Twilio account.
    messages: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[int]:
        return {int(i["id"]) for i in self.instances}

    @property
    def tokens(self) -> list[str]:
        return [str(i["token"]) for i in self.instances]

    def authorizations(self) -> list[str]:
        """Every way this party may authenticate (D5)."""
        user_org = self.credentials.authorization
        forms = [user_org]
        for token in self.tokens:
            forms += [f"Element {token}", f"{user_org}, Element {token}"]
        return forms

    def instance_body(self, name: str, tags: list[str]) -> dict[str, Any]:
        body = twilio_instance_body(self.sim, username=self.account_sid, password=self.auth_token)
        return {**body, "name": name, "tags": tags}


@dataclass
class World:
    a: Party
    b: Party
    # Strings that only B's objects contain.
    b_markers: list[str]

    def b_ids(self) -> set[int]:
        return self.b.ids

    def message_sids(self) -> list[str]:
        return self.a.messages + self.b.messages

    def message_paths(self) -> list[str]:
        return [f"messages/{sid}" for sid in self.message_sids()]


async def _party(
    api: Api, settings: Settings, pg_url: str, sim: TwilioSimulator, label: str
) -> Party:
    credentials = await new_tenant(settings, pg_url, f"{label}-{secrets.token_hex(6)}")
    sid, token = sim.add_account()
    return Party(credentials, sid, token, sim)


async def provision(api: Api, party: Party, name: str, tags: list[str]) -> dict[str, Any]:
    response = await api.with_auth(party.credentials.authorization).post(
        "instances", json=party.instance_body(name, tags)
    )
    assert response.status == 200, response.text
    created: dict[str, Any] = response.body
    party.instances.append(created)
    return created


@pytest.fixture
async def world(
    hubgate: Any, http: Any, settings: Settings, pg_url: str, sim: TwilioSimulator
) -> World:
    """Fresh tenants per test: what one fuzzing run deletes or disables, the next still has."""
    api = Api(http, hubgate.url, None)
    a = await _party(api, settings, pg_url, sim, "alpha")
    b = await _party(api, settings, pg_url, sim, "bravo")
    for n in range(2):
        await provision(api, a, f"alpha-{n}", ["alpha"])
    for party in (a, b):
        body = f"{party.credentials.email}-{secrets.token_hex(8)}"
        message = sim.add_inbound_message(
            "+15005550006", "+15005550001", body, account_sid=party.account_sid
        )
        party.messages.append(str(message["sid"]))
    markers = [b.credentials.user_secret, b.credentials.organization_secret, b.account_sid]
    markers.append(b.auth_token)
    markers.append(b.credentials.email)
    markers += b.messages
    for _ in range(2):
        unique = f"bravo-{secrets.token_hex(8)}"
        created = await provision(api, b, unique, [f"tag-{unique}"])
        markers += [unique, f"tag-{unique}", created["token"]]
    return World(a, b, markers)


def leaks(world: World, body_text: str, asked: str = "") -> list[str]:
    """What in an answer to A belongs to B: marker strings, or objects carrying B's ids.

    ``asked`` is what A sent (URL, body): a marker A put in its own request and that comes
    back in an error message is an echo, not a leak.
    """
    found = [m for m in world.b_markers if m in body_text and m not in asked]
    try:
        body = json.loads(body_text) if body_text else None
    except ValueError:
        return found
    b_ids = world.b_ids()

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            # An instance object (it has a token or an element) with one of B's ids.
            if node.get("id") in b_ids and ("token" in node or "element" in node):
                yield f"instance {node['id']}"
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return found + list(walk(body))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.fuzz.runner import EXAMPLES
    from tests.fuzz.stats import summary
    from tests.results import publish

    figures = {**summary(), "examples": EXAMPLES}
    if figures["requests"]:
        publish("fuzz", figures)
