"""Defects that fuzzing found, each kept as the request that showed it (issue 6)."""

from __future__ import annotations

import asyncio

import pytest

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, Api, twilio_instance_body
from tests.e2e.test_errors import assert_d9
from tests.logwatch import remember_secret


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


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800"}',
        b'{"configuration": {"\\udfff": "x"}}',
        b'{"configuration": {"username": "AC\\ud83d"}}',
        b'{"name": NaN}',
        b'{"tags": [Infinity]}',
        b'{"a":' * 65 + b"1" + b"}" * 65,
    ],
)
async def test_json_the_parser_takes_but_nothing_else_can_is_a_400(api: Api, raw: bytes) -> None:
    # Unpaired surrogates are valid JSON escapes that no UTF-8 encoder takes: in a
    # configuration key they reached the error body's renderer and were a 500.
    response = await api.post("instances", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400, response.text
    assert response.body["message"].startswith("Malformed JSON body")
    assert_d9(response.body, response.headers)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("event.poller.refresh_interval", "³"),
        ("event.poller.refresh_interval", "9" * 5000),
        ("pagination.max", "²"),
        ("pagination.max", "1" * 4400),
    ],
)
async def test_numeric_configuration_that_int_refuses_is_a_400(
    api: Api, sim: TwilioSimulator, key: str, value: str
) -> None:
    # "³".isdigit() is true and int("³") raises; so does int() of 4,300+ digits: both 500s.
    response = await api.post("instances", json=twilio_instance_body(sim, **{key: value}))
    assert response.status == 400, response.text
    assert_d9(response.body, response.headers)


HUB = "/elements/api-v2/hubs/messaging"


@pytest.fixture
async def hub(api: Api, sim: TwilioSimulator) -> Api:
    created = await api.post("instances", json=twilio_instance_body(sim))
    return api.with_auth(f"Element {created.body['token']}")


async def test_form_field_names_with_control_characters_reach_the_vendor(
    hub: Api, sim: TwilioSimulator
) -> None:
    # aiohttp's form encoder checks field names as if they were headers and raised on
    # control characters: a 500. The egress client now encodes forms itself.
    body = {"To": "+15005550006", "From": "+15005550001", "Body": "hi", "X\x16\r\n": "y"}
    response = await hub.post(f"{HUB}/messages", json=body)
    assert response.status == 200, response.text
    assert sim.requests[-1].form["X\x16\r\n"] == "y"


async def test_hub_body_with_unpaired_surrogate_is_a_400(hub: Api) -> None:
    response = await hub.post(
        f"{HUB}/messages",
        data=b'{"To": "+15005550006", "Body": "\\udc00"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400, response.text
    assert_d9(response.body, response.headers)


@pytest.mark.parametrize("name", ["page", "pageSize", "where", "type"])
async def test_a_query_parameter_given_twice_is_a_400(hub: Api, name: str) -> None:
    # The first one used to win silently: where=a&where=b filtered by a alone.
    path = f"{HUB}/numbers" if name == "type" else f"{HUB}/messages"
    value = {"page": "1", "pageSize": "2", "where": "to='+1'", "type": "Local"}[name]
    response = await hub.get(path, params=[(name, value), (name, value)])
    assert response.status == 400, response.text
    assert "given 2 times" in response.body["message"]


async def test_page_size_that_int_refuses_is_a_400(hub: Api) -> None:
    response = await hub.get(f"{HUB}/messages", params={"pageSize": "³"})
    assert response.status == 400, response.text
    assert_d9(response.body, response.headers)


async def test_page_size_of_more_digits_than_int_takes_is_the_cap(hub: Api) -> None:
    # int() refuses 5,000 digits; it was a 500, then a 400, and is now the cap (D202).
    response = await hub.get(f"{HUB}/messages", params={"pageSize": "9" * 5000})
    assert response.status == 200, response.text


async def test_more_concurrent_creates_than_pool_connections_all_succeed(
    api: Api, sim: TwilioSimulator
) -> None:
    # Found by bench/load.py: a request held its session's connection while the audit log
    # took a second one as the answer started; with more requests than connections each
    # waited for the other's, creates took the pool timeout (30 s) and a third were 503s.
    body = twilio_instance_body(sim)
    answers = await asyncio.gather(*(api.post("instances", json=body) for _ in range(60)))
    assert [a.status for a in answers] == [200] * 60


def test_query_parameters_are_documented_as_they_travel() -> None:
    # A query string cannot carry null: FastAPI's `anyOf [string, null]` for an optional
    # parameter made the fuzzer send a list or an object for `searchText` that reached the
    # server as a valid string, and report the 200 as invalid data accepted.
    from tests.fuzz.test_openapi_fuzz import DOCUMENT

    parameters = {
        (method, path, parameter["name"]): parameter["schema"]
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    }
    assert not [key for key, schema in parameters.items() if "null" in str(schema)]
    search = parameters[("get", f"{API}/instances", "searchText")]
    assert (search["type"], search["maxLength"]) == ("string", 200)


async def test_a_search_beside_an_element_token_alone_is_not_a_search(
    api: Api, sim: TwilioSimulator
) -> None:
    # The request `make reliability` reported (D47): with the Element token alone the answer
    # is that token's instance, whatever list filters come with it; the same filters with
    # User and Organization are a search that finds nothing, a 404. Both are valid requests.
    created = await api.post("instances", json=twilio_instance_body(sim))
    assert created.status == 200, created.text
    remember_secret(created.body["token"])
    reported = [("tags[]", "232242519"), ("searchText", "")]
    alone = api.with_auth(f"Element {created.body['token']}")
    answer = await alone.get("instances", params=reported)
    assert answer.status == 200, answer.text
    assert answer.body["id"] == created.body["id"]
    searched = await api.get("instances", params=reported)
    assert searched.status == 404, searched.text
    assert_d9(searched.body, searched.headers)
    # What the document forbids is refused whoever asks.
    for caller in (alone, api):
        too_long = await caller.get("instances", params=[("searchText", "x" * 201)])
        assert too_long.status == 400, too_long.text
        assert_d9(too_long.body, too_long.headers)
