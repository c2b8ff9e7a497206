"""The credential check's outbound request, judged by Prism serving Twilio's own OpenAPI file."""

from __future__ import annotations

import pytest

from tests.conftest import Api, RunningPrism

pytestmark = pytest.mark.prism

SID = "AC" + "0123456789abcdef" * 2


async def test_credential_check_is_a_valid_twilio_request(api: Api, prism: RunningPrism) -> None:
    body = {
        "element": {"key": "twiliov2"},
        "name": "against-prism",
        "configuration": {"username": SID, "password": "token", "base.url": prism.base_url},
    }
    response = await api.post("instances", json=body)
    # Prism answers 200 only when path, SID pattern and Basic auth match Twilio's description.
    assert response.status == 200, response.text
    assert response.body["valid"] is True


async def test_prism_rejects_what_twilio_would(api: Api, prism: RunningPrism) -> None:
    body = {
        "element": {"key": "twiliov2"},
        "configuration": {"username": "ACnot-a-sid", "password": "t", "base.url": prism.base_url},
    }
    response = await api.post("instances", json=body)
    # The SID breaks Twilio's path pattern: Prism says 422, which is a rejected credential.
    assert response.status == 400
    assert response.body["providerStatus"] == 422
