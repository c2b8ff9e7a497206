"""No bad input ever earns a 500: every error is the D9 body with a request id (D9, D10)."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body


def assert_d9(body: dict[str, object], headers: Mapping[str, str]) -> None:
    assert set(body) >= {"requestId", "message"}
    assert isinstance(body["requestId"], str)
    assert len(body["requestId"]) == 24
    assert headers["Elements-Request-Id"] == body["requestId"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "Malformed JSON body"),
        (b"[1, 2]", "Invalid request"),
        (b'{"element": "twiliov2"}', "element"),
        (b'{"configuration": [1, 2]}', "configuration"),
        (b'{"tags": "red"}', "tags"),
        (b'{"tags": [1]}', "tags"),
        (b'{"name": 5}', "name"),
        (b"[" * 100_000 + b"]" * 100_000, "Malformed JSON body"),
        (b'{"element": {"id": "x"}}', "element.id"),
        (b"\xff\xfe\x00garbage", "Malformed JSON body"),
    ],
)
async def test_bad_bodies_are_400(api: Api, payload: bytes, fragment: str) -> None:
    response = await api.post(
        "instances", data=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400, response.text
    assert fragment in response.body["message"]
    assert_d9(response.body, response.headers)


async def test_unknown_top_level_fields_are_ignored(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    body["retrieveObjectsAfterInstantiation"] = True
    body["whatever"] = {"deep": [1, 2, 3]}
    response = await api.post("instances", json=body)
    assert response.status == 200, response.text


async def test_wrong_content_type_is_415(api: Api) -> None:
    response = await api.post(
        "instances", data=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    assert_d9(response.body, response.headers)


async def test_huge_body_is_413(api: Api) -> None:
    response = await api.post(
        "instances",
        data=io.BytesIO(b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert_d9(response.body, response.headers)


async def test_huge_chunked_body_is_413(api: Api) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = await api.post(
        "instances", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert_d9(response.body, response.headers)


async def test_unknown_route_and_method(api: Api) -> None:
    missing = await api.get("no/such/route")
    assert missing.status == 404
    assert_d9(missing.body, missing.headers)
    wrong = await api.call("DELETE", "elements")
    assert wrong.status == 405
    assert_d9(wrong.body, wrong.headers)


async def test_success_carries_request_id(api: Api) -> None:
    response = await api.get("elements")
    assert response.status == 200
    assert len(response.headers["Elements-Request-Id"]) == 24


async def test_oversized_values_are_refused(api: Api, sim: TwilioSimulator) -> None:
    long_name = twilio_instance_body(sim)
    long_name["name"] = "n" * 500
    assert (await api.post("instances", json=long_name)).status == 400
    many_tags = twilio_instance_body(sim)
    many_tags["tags"] = [f"t{i}" for i in range(500)]
    assert (await api.post("instances", json=many_tags)).status == 400
    long_value = twilio_instance_body(sim, **{"event.notification.callback.url": "x" * 20000})
    assert (await api.post("instances", json=long_value)).status == 400
