"""Fuzzing every platform route from Hubgate's own OpenAPI document, in-process and over HTTP.

See ``runner.py`` for what every answer is checked for.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.parameters import ParameterLocation

from hubgate.app import create_app
from hubgate.settings import Settings
from tests.conftest import API, RunningHubgate
from tests.fuzz import routes
from tests.fuzz.conftest import World
from tests.fuzz.runner import (
    BAD_AUTHORIZATIONS,
    case_id,
    cases,
    fuzz_operation,
    negated,
    steer_authorization,
    steer_path,
)
from tests.fuzz.test_console_fuzz import ROUTES as CONSOLE_ROUTES

# The document is built without a database: generating it needs only the routes.
DOCUMENT = create_app(Settings(), database_url="postgresql://unused/doc").openapi()
LABELS = sorted(
    result.ok().label for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations()
)
CASES = cases(DOCUMENT, LABELS)


def steer(case: Case, world: World, data: st.DataObject) -> None:
    """Point a generated case at real objects (A's and B's), as A, often enough to matter."""
    a, b = world.a, world.b
    # Mostly real credentials, so that most requests get past authentication.
    steer_authorization(case, a.authorizations() * 3 + BAD_AUTHORIZATIONS, data)
    steer_path(case, "instance_id", sorted(a.ids | b.ids), data)
    steer_path(case, "config_id", list(range(1, 21)), data)
    steer_path(case, "key_or_id", ["twiliov2", "503"], data)
    steer_path(case, "hub", ["messaging"], data)
    steer_path(case, "element_key", ["twiliov2"], data)
    steer_path(case, "name", ["messages", "calls", "media"], data)
    steer_path(case, "object_name", ["messages", "churros"], data)
    encoded = [base64.b64encode(str(i).encode()).decode() for i in sorted(a.ids | b.ids)]
    steer_path(case, "encoded_id", encoded, data)
    steer_path(case, "rest", ["messages", "ping", "accounts", *world.message_paths()], data)
    if (
        case.method == "POST"
        and case.path.endswith("/instances")
        and not negated(case, ParameterLocation.BODY)
        and data.draw(st.booleans(), label="valid body")
    ):
        name = data.draw(st.text(min_size=1, max_size=30), label="name")
        case.body = a.instance_body(name, ["fuzz"])


def test_every_route_is_fuzzed() -> None:
    # Against the hand-written list (tests/fuzz/routes.py), not the document: a route the app
    # serves must be named there, and each named route must reach its fuzzer.
    from fastapi.routing import APIRoute, iter_route_contexts

    app = create_app(Settings(), database_url="postgresql://unused/doc")
    served = {
        f"{method} {ctx.path_format}"
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute)
        for method in ctx.methods or ()
        if method != "HEAD"
    }
    named = routes.OPENAPI | routes.CONSOLE | set(routes.EXCUSED)
    assert not served - named, f"routes no fuzzer is named for: {sorted(served - named)}"
    assert not named - served, f"named but not served: {sorted(named - served)}"
    fuzzed_labels = {label for label, _ in CASES}
    assert not routes.OPENAPI - fuzzed_labels, sorted(routes.OPENAPI - fuzzed_labels)
    console = {f"{method} {path}" for method, path in CONSOLE_ROUTES}
    assert not routes.CONSOLE - console, sorted(routes.CONSOLE - console)


def test_the_document_describes_bodies_errors_and_auth() -> None:
    # What the document once lacked: request bodies, the D9 errors, authentication; and what
    # it wrongly had: a 422 Hubgate never sends, operation ids given twice.
    operations = [
        (method.upper(), path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    error = {"$ref": "#/components/schemas/Error"}
    for method, path, operation in operations:
        where = f"{method} {path}"
        responses = operation["responses"]
        assert "422" not in responses, where
        assert responses["400"]["content"]["application/json"]["schema"] == error, where
        assert "Elements-Request-Id" in responses["400"]["headers"], where
        if method in ("POST", "PUT", "PATCH") and path.endswith(("/instances", "/{rest}")):
            assert operation["requestBody"]["content"], where
            assert "415" in responses, where
        if path.startswith(f"{API}/instances") or path == f"{API}/audit-logs":
            assert operation["security"] == [{"OpenConnectors": []}], where
            assert responses["401"]["content"]["application/json"]["schema"] == error, where
    assert set(DOCUMENT["components"]["securitySchemes"]) == {"OpenConnectors"}


@pytest.fixture(scope="module")
def asgi_schema(settings: Settings, pg_url: str) -> Any:
    """The document bound to an app of its own; its lifespan runs on schemathesis' loop."""
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.app = create_app(settings, database_url=pg_url)
    return schema


@pytest.fixture(scope="module")
def http_schema(hubgate: RunningHubgate) -> Any:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.config.update(base_url=hubgate.url)
    return schema


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[case_id(c) for c in CASES])
async def test_fuzz_in_process(
    label: str, mode: GenerationMode, world: World, asgi_schema: Any
) -> None:
    # In a thread: the simulator and the database live on this test's event loop.
    await asyncio.to_thread(fuzz_operation, asgi_schema, label, mode, world, steer)


@pytest.mark.parametrize("label", LABELS)
async def test_fuzz_over_http(label: str, world: World, http_schema: Any) -> None:
    await asyncio.to_thread(
        fuzz_operation, http_schema, label, GenerationMode.POSITIVE, world, steer, timeout=30
    )
