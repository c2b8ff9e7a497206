"""Reading a JSON request body: one parser for platform and hub routes alike.

``json.loads`` alone lets through what later breaks something else: unpaired surrogates
(``"\\ud800"`` is valid JSON, but no UTF-8 encoder, PostgreSQL or response renderer takes the
string it gives), nesting deep enough to exhaust the stack of recursive code further on, and
``NaN``/``Infinity``, which JSON does not have. Each is a 400 here.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from hubgate.kit.errors import HubgateError, bad_request

MAX_DEPTH = 64
MALFORMED = "Malformed JSON body"


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(raw: bytes) -> Any:
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise bad_request(MALFORMED) from None
    _check(data)
    return data


def _check(data: Any) -> None:
    # Iterative, so that checking a deep document cannot itself exhaust the stack.
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _encodable(node)
        elif isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise bad_request(f"{MALFORMED}: nested more than {MAX_DEPTH} levels deep")
            if isinstance(node, dict):
                for key, value in node.items():
                    _encodable(key)
                    stack.append((value, depth + 1))
            else:
                stack.extend((value, depth + 1) for value in node)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise HubgateError(400, f"{MALFORMED}: a string holds an unpaired surrogate") from None
