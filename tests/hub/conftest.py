"""Hub fixtures: each test gets its own Twilio account in the simulator and an instance of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hubgate.testing.twilio_sim import SimRequest, TwilioSimulator
from tests.conftest import Api


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
