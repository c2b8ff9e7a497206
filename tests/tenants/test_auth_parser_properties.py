"""Properties of the Authorization parser (D5, D8): it never raises anything but the D8 401,
and every accepted form (any order, any case, optional colon, any spacing) round-trips."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.kit.errors import AUTH_FAILED, HubgateError
from hubgate.tenants.auth import MAX_HEADER_LENGTH, Credentials, parse_authorization

FAST = settings(max_examples=300, deadline=None)
NAMES = {"user": "User", "organization": "Organization", "element": "Element"}

# What a secret or token may hold: printable ASCII without spaces, commas and colons (ours
# are base64 and hex). "User:0:" is refused, rightly: is the name "User" or "User:0"?
values = st.text(
    alphabet=sorted(set(string.printable) - set(string.whitespace) - {",", ":"}),
    min_size=1,
    max_size=60,
)
spaces = st.text(alphabet=" \t", max_size=3)


def cases_of(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper(), name.swapcase()])


@st.composite
def rendered(draw: st.DrawFn) -> tuple[str, Credentials]:
    """A header a client could send, and the credentials it carries."""
    chosen = draw(st.lists(st.sampled_from(sorted(NAMES)), min_size=1, max_size=3, unique=True))
    found = {key: draw(values) for key in chosen}
    pairs = []
    for key in chosen:
        name = draw(cases_of(NAMES[key]))
        separator = draw(st.sampled_from([" ", "  ", ": ", ":", " \t"]))
        pairs.append(f"{draw(spaces)}{name}{separator}{found[key]}{draw(spaces)}")
    return ",".join(pairs), Credentials(**found)


def parses_or_refuses(header: str | None) -> Credentials | None:
    try:
        return parse_authorization(header)
    except HubgateError as error:
        refused = error
    assert (refused.status, refused.message, refused.extra) == (401, AUTH_FAILED, {})
    return None


@FAST
@given(rendered())
def test_accepted_forms_round_trip(case: tuple[str, Credentials]) -> None:
    header, expected = case
    assert parse_authorization(header) == expected


@FAST
@given(st.one_of(st.none(), st.text(), st.text(alphabet=",: \tUserOganiztElm=x", max_size=40)))
def test_anything_else_is_the_d8_401(header: str | None) -> None:
    parses_or_refuses(header)


@FAST
@given(rendered(), st.data())
def test_mutated_headers_parse_whole_or_not_at_all(
    case: tuple[str, Credentials], data: st.DataObject
) -> None:
    header, _ = case
    start = data.draw(st.integers(0, len(header)))
    end = data.draw(st.integers(start, len(header)))
    piece = data.draw(st.text(max_size=4))
    mutated = header[:start] + piece + header[end:]
    parsed = parses_or_refuses(mutated)
    if parsed is not None:
        # Whatever is accepted is exactly what a client could have meant: each value is one
        # printable ASCII token, and parsing its rendering gives it back.
        for value in (parsed.user, parsed.organization, parsed.element):
            assert value is None or (value.isascii() and value.isprintable() and " " not in value)
        again = ", ".join(f"{NAMES[k]} {v}" for k, v in vars(parsed).items() if v is not None)
        assert parse_authorization(again) == parsed


@FAST
@given(st.text(min_size=MAX_HEADER_LENGTH + 1, max_size=MAX_HEADER_LENGTH + 50))
def test_overlong_headers_are_refused_before_parsing(header: str) -> None:
    assert parses_or_refuses(header) is None
