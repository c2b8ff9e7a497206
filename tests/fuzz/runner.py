"""What every fuzzing test shares: the checks, the steering toward real objects, the loop.

Schemathesis generates requests from an OpenAPI document, valid ones and invalid ones;
tenant A sends them (with its user secrets, its Element tokens, or both), sometimes aimed at
A's own objects and sometimes at B's. Every answer must be no 5xx, must match the documented
status, content type, headers and schema, must be a D9 body when it is an error, and must not
contain anything of B's. Examples per operation and mode: ``HUBGATE_FUZZ_EXAMPLES`` (small in
``make test``, larger in ``make reliability``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import World, leaks
from tests.fuzz.stats import record

EXAMPLES = int(os.environ.get("HUBGATE_FUZZ_EXAMPLES", "6"))
# `make test` replays the same examples every time, so that it fails only when the code
# changed; `make reliability` (HUBGATE_FUZZ_EXAMPLES set) explores new ones each run.
DERANDOMIZE = "HUBGATE_FUZZ_EXAMPLES" not in os.environ
BUILT_IN_CHECKS: list[CheckFunction] = [
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
Steer = Callable[[Case, World, st.DataObject], None]
# No shrinking phase: a failing request is reported as found, the run stays bounded.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def no_server_error(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """No 5xx (D10: a 500 is always a bug), except a 502 that carries the vendor's own
    failure in the D9 provider fields: a hub call the vendor refused (its 401 for another
    account's SID, its 5xx) is the vendor's answer, passed on."""
    if response.status_code >= 500:
        body = json.loads(response.content) if response.content else {}
        from_vendor = response.status_code == 502 and "providerStatus" in body
        assert from_vendor, f"server error {response.status_code}: {response.text[:500]}"
    return None


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


def isolation(world: World) -> CheckFunction:
    def nothing_of_tenant_b(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        request = response.request
        body = request.body or b""
        asked = unquote(str(request.url)) + (
            body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        )
        found = leaks(world, response.text, asked)
        assert not found, f"an answer to tenant A holds tenant B's {found}"
        return None

    return nothing_of_tenant_b


def negated(case: Case, location: ParameterLocation) -> bool:
    return case.meta is not None and case.meta.is_negative_at(location)


def steer_authorization(case: Case, choices: list[str], data: st.DataObject) -> None:
    # What the negative mode made invalid stays invalid: steering it back would make the
    # case a valid one that the server rightly accepts.
    if not negated(case, ParameterLocation.HEADER):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = data.draw(st.sampled_from(choices), label="auth")


def steer_path(case: Case, name: str, values: list[Any], data: st.DataObject) -> None:
    params = case.path_parameters
    if negated(case, ParameterLocation.PATH) or not params or name not in params:
        return
    if data.draw(st.booleans(), label=f"real {name}"):
        params[name] = data.draw(st.sampled_from(values), label=name)


def fuzz_operation(
    schema: Any,
    label: str,
    mode: GenerationMode,
    world: World,
    steer: Steer,
    **call: Any,
) -> None:
    operation = schema.find_operation_by_label(label)
    checks = [*BUILT_IN_CHECKS, no_server_error, d9_error_body, isolation(world)]
    if mode is GenerationMode.POSITIVE:
        checks.append(ignored_auth)

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        steer(case, world, data)
        response = case.call(**call)
        record(label, mode.value, response.status_code)
        case.validate_response(response, checks=checks)

    fuzz()


def can_be_invalid(document: dict[str, Any], label: str) -> bool:
    """Whether any input of the operation has a schema that some value breaks."""
    method, path = label.split(" ", 1)
    operation = document["paths"][path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if any(media.get("schema") for media in content.values()):
        return True
    return any(
        {k: v for k, v in p["schema"].items() if k != "title"} != {"type": "string"}
        for p in operation.get("parameters", [])
    )


def cases(document: dict[str, Any], labels: list[str]) -> list[tuple[str, GenerationMode]]:
    positive = [(label, GenerationMode.POSITIVE) for label in labels]
    negative = [
        (label, GenerationMode.NEGATIVE) for label in labels if can_be_invalid(document, label)
    ]
    return positive + negative


def case_id(case: tuple[str, GenerationMode]) -> str:
    return f"{case[0]}-{case[1].value}"
