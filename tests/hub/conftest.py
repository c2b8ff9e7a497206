"""Hub fixtures: each test gets its own Twilio account in the simulator and an instance of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sims.twilio_sim import SimRequest, TwilioSimulator
from tests.conftest import Api, shared_file
from tests.hub.twilio_contract import TwilioContract

_contract: list[TwilioContract] = []


def twilio_contract() -> TwilioContract:
    """Twilio's own description from ../shared; without it, the test asking is skipped."""
    if not _contract:
        _contract.append(TwilioContract(shared_file("twilio/twilio_api_v2010.json")))
    return _contract[0]


@pytest.fixture(autouse=True)
def every_vendor_request_follows_twilios_description(sim: TwilioSimulator) -> Iterator[None]:
    """Whatever a hub test made Hubgate send to the simulator, Twilio's OpenAPI must allow.

    Every hub test is checked this way, so without ../shared every hub test is reported as
    skipped rather than passing unchecked.
    """
    contract = twilio_contract()
    start = len(sim.requests)
    yield
    problems = [
        f"{r.method} {r.path}: {problem}"
        for r in sim.requests[start:]
        for problem in contract.problems(r)
    ]
    assert not problems, "\n".join(problems)


@dataclass
class TwilioAccount:
    sim: TwilioSimulator
    sid: str
    token: str

    def requests(self) -> list[SimRequest]:
        """What the simulator received for this account (its own Basic auth user)."""
        return [r for r in self.sim.requests if r.user == self.sid]

    def instance_body(self, **configuration: Any) -> dict[str, Any]:
        return {
            "element": {"key": "twiliov2"},
            "configuration": {
                "username": self.sid,
                "password": self.token,
                "base.url": self.sim.base_url,
                **configuration,
            },
            "name": "hub-test",
        }


@dataclass
class HubInstance:
    id: int
    token: str
    hub: Api  # authorized with the instance's Element token only
    account: TwilioAccount


@pytest.fixture
def twilio(sim: TwilioSimulator) -> TwilioAccount:
    sid, token = sim.add_account()
    return TwilioAccount(sim, sid, token)


async def create_instance(api: Api, account: TwilioAccount, **body: Any) -> HubInstance:
    request = account.instance_body()
    request.update(body)
    response = await api.post("instances", json=request)
    assert response.status == 200, response.text
    created = response.body
    return HubInstance(
        created["id"], created["token"], api.with_auth(f"Element {created['token']}"), account
    )


@pytest.fixture
async def instance(api: Api, twilio: TwilioAccount) -> HubInstance:
    return await create_instance(api, twilio)
