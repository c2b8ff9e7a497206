"""Defects that fuzzing found, each kept as the request that showed it (issue 6)."""

from __future__ import annotations

import pytest

from hubgate.testing.twilio_sim import TwilioSimulator
from tests.conftest import Api, twilio_instance_body
from tests.e2e.test_errors import assert_d9


@pytest.mark.parametrize("key_or_id", ["³", "٣", "9" * 5000])
async def test_element_key_that_looks_numeric_is_a_404(api: Api, key_or_id: str) -> None:
    # "³".isdigit() is true but int("³") raises: it was a 500. So was a 5,000-digit id.
    for path in (f"elements/{key_or_id}", f"elements/{key_or_id}/instances"):
        response = await api.get(path)
        assert response.status == 404, response.text
        assert_d9(response.body, response.headers)


@pytest.mark.parametrize("tag", ["a\x00b", "\x1b[31m", ""])
async def test_tag_filter_with_control_characters_is_a_400(api: Api, tag: str) -> None:
    # A NUL in tags[] reached PostgreSQL's JSONB and came back as a 500.
    for path in ("instances", "elements/twiliov2/instances"):
        response = await api.get(path, params=[("tags[]", "ok"), ("tags[]", tag)])
        assert response.status == 400, response.text
        assert_d9(response.body, response.headers)


async def test_tag_filter_matches_tags_as_they_were_stored(api: Api, sim: TwilioSimulator) -> None:
    body = twilio_instance_body(sim)
    body["tags"] = ["<b>bold</b>"]
    created = await api.post("instances", json=body)
    assert created.body["tags"] == ["bold"]
    found = await api.get("instances", params=[("tags[]", "<i>bold</i>")])
    assert [i["id"] for i in found.body] == [created.body["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"cacheTimeToLive": True},
        {"cachingEnabled": 0.0},
        {"maxCacheSize": False},
        {"traceLoggingEnabled": "yes"},
        {"cacheTimeToLive": "15"},
    ],
)
async def test_flags_of_the_wrong_json_type_are_a_400(
    api: Api, sim: TwilioSimulator, body: dict[str, object]
) -> None:
    # Pydantic's lax mode turned true into 1 and 0.0 into false, and the PATCH was a 200.
    created = await api.post("instances", json=twilio_instance_body(sim))
    response = await api.patch(f"instances/{created.body['id']}", json=body)
    assert response.status == 400, response.text
    assert_d9(response.body, response.headers)
