"""Fuzzing every route from Hubgate's own OpenAPI document, in-process (ASGI) and over HTTP.

Schemathesis generates requests from the document, valid ones and invalid ones; tenant A
sends them (with its user secrets, its Element tokens, or both), sometimes aimed at A's own
objects and sometimes at B's. Every answer must be no 5xx, must match the documented status,
content type, headers and schema, must be a D9 body when it is an error, and must not contain
anything of B's. The number of examples per route and mode comes from
``HUBGATE_FUZZ_EXAMPLES`` (small in ``make test``, larger in ``make reliability``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hubgate.app import create_app
from hubgate.settings import Settings
from tests.conftest import RunningHubgate
from tests.fuzz.conftest import World, leaks
from tests.fuzz.stats import record

EXAMPLES = int(os.environ.get("HUBGATE_FUZZ_EXAMPLES", "6"))

# The document is built without a database: generating it needs only the routes.
DOCUMENT = create_app(Settings(), database_url="postgresql://unused/doc").openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
LABELS = sorted(result.ok().label for result in SCHEMA.get_all_operations())
BUILT_IN_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
BAD_AUTHORIZATIONS = [
    "",
    "Bearer abc",
    "User x, Organization y",
    "Element nope",
    "User \u00e9, Organization \u00e9",
    "Element " + "a" * 5000,
    ",,,",
]


def d9_error_body(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error is the D9 body, with the request id of its header."""
    header = response.headers.get("elements-request-id", [""])[0]
    assert len(header) == 24, f"Elements-Request-Id missing or malformed: {header!r}"
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert isinstance(body.get("message"), str), body
        assert body.get("requestId") == header, body
        assert "Traceback" not in response.text
    return None


def isolation(world: World) -> Callable[[CheckContext, Response, Case], bool | None]:
    def nothing_of_tenant_b(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        found = leaks(world, response.text)
        assert not found, f"an answer to tenant A holds tenant B's {found}"
        return None

    return nothing_of_tenant_b


def negated(case: Case, location: ParameterLocation) -> bool:
    return case.meta is not None and case.meta.is_negative_at(location)


def steer(case: Case, world: World, data: st.DataObject) -> None:
    """Point a generated case at real objects (A's and B's), as A, often enough to matter.

    What the negative mode made invalid stays invalid: steering it back would turn the case
    into a valid one that the server rightly accepts.
    """
    a, b = world.a, world.b
    if not negated(case, ParameterLocation.HEADER):
        authorizations = a.authorizations() + BAD_AUTHORIZATIONS
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = data.draw(st.sampled_from(authorizations), label="auth")
    params = None if negated(case, ParameterLocation.PATH) else case.path_parameters
    if params and "instance_id" in params and data.draw(st.booleans(), label="real id"):
        params["instance_id"] = data.draw(st.sampled_from(sorted(a.ids | b.ids)), label="id")
    if params and "config_id" in params and data.draw(st.booleans(), label="real config"):
        params["config_id"] = data.draw(st.integers(1, 20), label="config_id")
    if params and "key_or_id" in params and data.draw(st.booleans(), label="real element"):
        params["key_or_id"] = data.draw(st.sampled_from(["twiliov2", "503"]), label="element")
    if (
        case.method == "POST"
        and not negated(case, ParameterLocation.BODY)
        and case.path.endswith("/instances")
        and data.draw(st.booleans(), label="valid body")
    ):
        name = data.draw(st.text(min_size=1, max_size=30), label="name")
        case.body = a.instance_body(name, ["fuzz"])


def run_operation(schema: Any, label: str, mode: GenerationMode, world: World, **call: Any) -> None:
    operation = schema.find_operation_by_label(label)
    checks = [*BUILT_IN_CHECKS, d9_error_body, isolation(world)]
    extra = [ignored_auth] if mode is GenerationMode.POSITIVE else []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        steer(case, world, data)
        response = case.call(**call)
        record(label, mode.value, response.status_code)
        case.validate_response(response, checks=checks + extra)

    fuzz()


def can_be_invalid(label: str) -> bool:
    """Whether any input of the operation has a schema that some value breaks."""
    method, path = label.split(" ", 1)
    operation = DOCUMENT["paths"][path][method.lower()]
    if "requestBody" in operation:
        return True
    return any(
        p["schema"] != {"type": "string", "title": p["schema"].get("title")}
        for p in operation.get("parameters", [])
    )


CASES = [(label, GenerationMode.POSITIVE) for label in LABELS] + [
    (label, GenerationMode.NEGATIVE) for label in LABELS if can_be_invalid(label)
]


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


@pytest.mark.parametrize(
    ("label", "mode"), CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES]
)
async def test_fuzz_in_process(
    label: str, mode: GenerationMode, world: World, asgi_schema: Any
) -> None:
    # Runs in a thread: the simulator and the database live on this test's event loop.
    await asyncio.to_thread(run_operation, asgi_schema, label, mode, world)


@pytest.mark.parametrize("label", LABELS)
async def test_fuzz_over_http(label: str, world: World, http_schema: Any) -> None:
    await asyncio.to_thread(
        run_operation, http_schema, label, GenerationMode.POSITIVE, world, timeout=30
    )
