"""Helpers for the common resource API tests: a definition, a transformation, an instance."""

from __future__ import annotations

from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body

CHURROS = {
    "fields": [
        {"path": "churrosId", "type": "number"},
        {"path": "churrosName", "type": "string"},
        {"path": "churrosMod", "type": "string"},
    ]
}


def field(path: str, vendor_path: str, **more: Any) -> dict[str, Any]:
    return {"path": path, "vendorPath": vendor_path, **more}


async def instance(api: Api, sim: TwilioSimulator) -> dict[str, Any]:
    created = await api.post("instances", json=twilio_instance_body(sim))
    assert created.status == 200, created.text
    body: dict[str, Any] = created.body
    return body


async def ok(api: Api, method: str, path: str, body: Any = None) -> Any:
    response = await api.call(method, path, json=body)
    assert response.status == 200, (method, path, response.text)
    return response.body
