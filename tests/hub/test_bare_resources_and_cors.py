"""Hub resources without the hub segment (D49) and CORS on every answer (D52)."""

from __future__ import annotations

import io

import pytest
from aiohttp import ClientSession

from hubgate.app import create_app
from hubgate.cors import EXPOSED
from hubgate.settings import Settings
from tests.conftest import Api, free_port, serve_in_loop
from tests.hub.conftest import HubInstance

API = "/elements/api-v2"
EXPOSED_HEADERS = EXPOSED.decode()


async def test_resource_without_hub_segment_is_the_hub_call(instance: HubInstance) -> None:
    sent = {"To": "+15558675310", "From": "+15017122661", "Body": "bare"}
    created = await instance.hub.post(f"{API}/messages", json=sent)
    assert created.status == 200, created.text
    sid = created.body["sid"]
    bare = await instance.hub.get(f"{API}/messages/{sid}")
    hubbed = await instance.hub.get(f"{API}/hubs/messaging/messages/{sid}")
    assert bare.status == hubbed.status == 200
    assert bare.body == hubbed.body
    assert bare.headers["elements-element-instance-id"] == str(instance.id)
    listed = await instance.hub.get(f"{API}/messages", params={"where": "body='bare'"})
    assert [m["sid"] for m in listed.body] == [sid]
    unknown = await instance.hub.get(f"{API}/nosuch")
    assert unknown.status == 404
    assert "nosuch" in unknown.body["message"]


async def test_platform_routes_stay_platform_routes(instance: HubInstance, api: Api) -> None:
    # "instances" starts a platform route: with the token it is the token-scoped instance.
    mine = await instance.hub.get(f"{API}/instances")
    assert mine.status == 200, mine.text
    assert mine.body["id"] == instance.id
    assert (await instance.hub.get(f"{API}/elements/twiliov2")).body["key"] == "twiliov2"
    # Without an Element token a path that is no route stays a 404 of the platform.
    missing = await api.get(f"{API}/messages")
    assert missing.status == 404
    assert missing.headers["Elements-Request-Id"]


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/hubs/messaging/messages",  # answered by the fast path
        f"{API}/messages",  # the same, without the hub segment
        f"{API}/elements/twiliov2",  # answered by FastAPI's routes
        f"{API}/hubs/messaging/nosuch",  # an error
    ],
)
async def test_cors_headers_on_every_answer(instance: HubInstance, path: str) -> None:
    origin = {"Origin": "https://app.example.com"}
    response = await instance.hub.get(path, headers=origin)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == EXPOSED_HEADERS
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["Elements-Request-Id"]
    # Without Origin, no CORS headers at all.
    plain = await instance.hub.get(path)
    assert "Access-Control-Allow-Origin" not in plain.headers


async def test_preflight_answers_204(instance: HubInstance) -> None:
    preflight = await instance.hub.with_auth(None).call(
        "OPTIONS",
        f"{API}/hubs/messaging/messages",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert "Access-Control-Allow-Credentials" not in preflight.headers


async def test_cors_on_answers_made_before_the_app(instance: HubInstance) -> None:
    # The body cap answers 413 before any route runs; a browser must still read it.
    too_big = await instance.hub.post(
        f"{API}/hubs/messaging/messages",
        data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
        headers={"Origin": "https://app.example.com", "Content-Type": "application/json"},
    )
    assert too_big.status == 413
    assert too_big.headers["Access-Control-Allow-Origin"] == "*"
    assert too_big.headers["Access-Control-Expose-Headers"] == EXPOSED_HEADERS


async def test_cors_origin_list(settings: Settings, pg_url: str, http: ClientSession) -> None:
    # A second app whose settings name the origins a browser may call from.
    listed = settings.model_copy(
        update={"cors_origins": "https://a.example.com, https://b.example.com", "port": free_port()}
    )
    app = create_app(listed, database_url=pg_url)
    server, task = await serve_in_loop(app, listed.port)
    try:
        api = Api(http, f"http://127.0.0.1:{listed.port}", None)
        allowed = await api.get(f"{API}/elements", headers={"Origin": "https://b.example.com"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example.com"
        assert allowed.headers["Vary"] == "Origin"
        other = await api.get(f"{API}/elements", headers={"Origin": "https://evil.example"})
        assert other.status == 200
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        server.should_exit = True
        await task
