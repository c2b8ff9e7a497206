"""The Authorization parser of D5: every accepted form, and refusal of everything else."""

from __future__ import annotations

import pytest

from hubgate.kit.errors import HubgateError
from hubgate.tenants.auth import Credentials, parse_authorization


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("User u1, Organization o1", Credentials("u1", "o1", None)),
        ("Organization o1, User u1", Credentials("u1", "o1", None)),
        ("user u1,organization o1", Credentials("u1", "o1", None)),
        ("USER u1 ,  ORGANIZATION o1", Credentials("u1", "o1", None)),
        ("User u1, Organization o1, Element t=", Credentials("u1", "o1", "t=")),
        ("Element t=, User u1", Credentials("u1", None, "t=")),
        ("Element: t=", Credentials(None, None, "t=")),
        ("Element:t=", Credentials(None, None, "t=")),
        ("Element t+/=", Credentials(None, None, "t+/=")),
    ],
)
def test_accepted_forms(header: str, expected: Credentials) -> None:
    assert parse_authorization(header) == expected


def test_absent_header_is_empty() -> None:
    assert parse_authorization(None) == Credentials()


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
        "User",
        "User ",
        "User a b",
        "User a, User b",
        "User a,, Organization b",
        "User a, Organization b,",
        "Token x",
        "User \u00e9",
        "User a\x00b",
        "User " + "a" * 5000,
    ],
)
def test_malformed_headers_are_401(header: str) -> None:
    with pytest.raises(HubgateError) as raised:
        parse_authorization(header)
    assert raised.value.status == 401
