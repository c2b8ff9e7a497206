"""The hub's raw JSON answer (D530) carries what Starlette's ``Response`` would: the fast path
sends it without one, FastAPI's routes wrap it in one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.responses import Response

from hubgate.hub.endpoints import JsonAnswer

HEADERS = {"Elements-Instance-Id": "7", "Elements-Returned-Count": "2", "X-Naïve": "é"}


@pytest.mark.parametrize("status", [200, 201, 202, 204, 304, 404, 502])
@pytest.mark.parametrize("body", [[{"sid": "SM1"}, {"sid": "SM2"}], {"id": 2**70}, None])
def test_raw_answer_is_what_starlette_would_send(status: int, body: Any) -> None:
    answer = JsonAnswer(body, dict(HEADERS), status)
    content = answer.body
    expected = Response(content, status_code=status, headers=HEADERS, media_type="application/json")
    assert (answer.status_code, answer.raw_headers) == (status, expected.raw_headers)
    assert json.loads(content) == body
    wrapped = answer.response()
    assert (wrapped.status_code, wrapped.raw_headers, wrapped.body) == (
        status,
        expected.raw_headers,
        content,
    )


def test_integers_past_64_bits_are_written_by_the_standard_module() -> None:
    assert JsonAnswer({"id": 2**70}, {}).body == b'{"id":1180591620717411303424}'
