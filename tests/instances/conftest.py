"""Helpers the instances tests share."""

from __future__ import annotations

from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body


async def provision(api: Api, sim: TwilioSimulator, **overrides: Any) -> dict[str, Any]:
    """A Twilio instance on the simulator's account, the create request's fields overridden."""
    body = twilio_instance_body(sim)
    body.update(overrides)
    response = await api.post("instances", json=body)
    assert response.status == 200, response.text
    created: dict[str, Any] = response.body
    return created
