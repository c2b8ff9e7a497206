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
from tests.conftest import RunningHubgate
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
    # The document lists every API route the app serves, so a new route cannot slip past.
    from fastapi.routing import APIRoute, iter_route_contexts

    app = create_app(Settings(), database_url="postgresql://unused/doc")
    served = {
        f"{method} {ctx.path_format}"
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute) and ctx.include_in_schema
        for method in ctx.methods or ()
        if method != "HEAD"
    }
    assert served <= set(LABELS), served - set(LABELS)
    assert len(LABELS) >= 30


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
