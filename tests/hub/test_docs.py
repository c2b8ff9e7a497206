"""API docs: OpenAPI 3 per element and per instance from the manifest, and the platform's own."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from tests.conftest import Api, RunningHubgate
from tests.hub.conftest import HubInstance


async def test_element_docs_are_valid_openapi_of_every_resource(api: Api) -> None:
    response = await api.with_auth(None).get("elements/twiliov2/docs")
    assert response.status == 200
    spec: dict[str, Any] = response.body
    validate(spec)
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for resource in ("messages", "messages/{id}/media/{subId}", "numbers", "ping", "calls/{id}"):
        assert f"/hubs/messaging/{resource}" in paths
    send = paths["/hubs/messaging/messages"]["post"]
    body = send["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["MediaUrl"]["type"] == "array"
    assert body["required"] == ["To"]
    numbers = {p["name"]: p for p in paths["/hubs/messaging/numbers"]["get"]["parameters"]}
    assert numbers["countryCode"]["schema"]["default"] == "US"
    assert "where" in numbers
    assert (await api.get("elements/503/docs")).body["paths"] == paths
    assert (await api.get("elements/nope/docs")).status == 404


async def test_instance_docs_point_at_this_hubgate(
    api: Api, hubgate: RunningHubgate, instance: HubInstance
) -> None:
    response = await api.get(f"instances/{instance.id}/docs")
    assert response.status == 200
    validate(response.body)
    server = response.body["servers"][0]["url"]
    assert server == f"{hubgate.runtime.settings.base_url}/elements/api-v2"
    # "Try it out" works: the documented path with the token reaches the hub.
    assert hubgate.url == hubgate.runtime.settings.base_url
    tried = await instance.hub.get(urlsplit(server).path + "/hubs/messaging/ping")
    assert tried.body == {"endpoint": "twiliov2", "valid": True}
    assert (await api.with_auth(None).get(f"instances/{instance.id}/docs")).status == 401


async def test_platform_openapi_is_valid_and_lists_every_route(
    api: Api, hubgate: RunningHubgate
) -> None:
    response = await api.with_auth(None).get("/elements/api-v2/openapi.json")
    assert response.status == 200
    spec = response.body
    validate(spec)
    listed = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for route in hubgate.app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            path = route.path_format
            for method in route.methods:
                assert (path, method) in listed, (path, method)
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
