"""Fuzzing every hub resource from the element's own OpenAPI (``/elements/{key}/docs``).

The platform document has one catch-all hub route (``/hubs/{hub}/{rest}``); the element's
document names each resource, its parameters and bodies, so fuzzing from it reaches the
pipeline (routing, CEQL, paging, form encoding, the vendor). See ``runner.py`` for the checks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from hubgate.app import create_app
from hubgate.elements.registry import discover
from hubgate.hub.docs import element_openapi
from hubgate.settings import Settings
from tests.conftest import API, RunningHubgate
from tests.fuzz.conftest import World
from tests.fuzz.runner import (
    BAD_AUTHORIZATIONS,
    case_id,
    cases,
    fuzz_operation,
    steer_authorization,
    steer_path,
)

ELEMENTS = [element.key for element in discover()]


def document(key: str, base_url: str) -> dict[str, Any]:
    return element_openapi(discover().get(key), base_url)


OFFLINE = {key: document(key, "http://testserver") for key in ELEMENTS}
CASES = [
    (key, label, mode)
    for key in ELEMENTS
    for label, mode in cases(
        OFFLINE[key],
        sorted(
            r.ok().label for r in schemathesis.openapi.from_dict(OFFLINE[key]).get_all_operations()
        ),
    )
]


def steer(case: Case, world: World, data: st.DataObject) -> None:
    a = world.a
    with_token = [f for f in a.authorizations() if "Element" in f]
    steer_authorization(case, with_token * 4 + BAD_AUTHORIZATIONS, data)
    steer_path(case, "id", [*world.message_sids(), a.account_sid, world.b.account_sid], data)


@pytest.fixture(scope="module")
def asgi_app(settings: Settings, pg_url: str) -> Any:
    return create_app(settings, database_url=pg_url)


@pytest.mark.parametrize(
    ("key", "label", "mode"), CASES, ids=[f"{k}-{case_id((lbl, m))}" for k, lbl, m in CASES]
)
async def test_fuzz_hub_in_process(
    key: str, label: str, mode: GenerationMode, world: World, asgi_app: Any
) -> None:
    schema = schemathesis.openapi.from_dict(OFFLINE[key])
    schema.app = asgi_app
    await asyncio.to_thread(fuzz_operation, schema, label, mode, world, steer)


@pytest.mark.parametrize(
    ("key", "label", "mode"), [c for c in CASES if c[2] is GenerationMode.POSITIVE]
)
async def test_fuzz_hub_over_http(
    key: str, label: str, mode: GenerationMode, world: World, hubgate: RunningHubgate
) -> None:
    schema = schemathesis.openapi.from_dict(document(key, hubgate.url))
    schema.config.update(base_url=f"{hubgate.url}{API}")
    await asyncio.to_thread(fuzz_operation, schema, label, mode, world, steer, timeout=30)
