"""The ``Authorization`` header of Open Connectors: comma-separated ``Name value`` pairs (D5)."""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.kit.errors import unauthorized

_NAMES = {"user": "user", "organization": "organization", "element": "element"}
# A header longer than this is not one a client of ours sends; refuse it before parsing.
MAX_HEADER_LENGTH = 4096


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    organization: str | None = None
    element: str | None = None


def parse_authorization(header: str | None) -> Credentials:
    """Parse ``User <s>, Organization <s>, Element <t>`` in any order and case.

    A colon after the name (``Element: <t>``) is tolerated. Anything else (an unknown
    name, a name twice, a pair without a value, stray commas) is malformed and raises
    the D8 401, because a half-understood credential must never authenticate.
    """
    if header is None:
        return Credentials()
    if len(header) > MAX_HEADER_LENGTH:
        raise unauthorized()
    found: dict[str, str] = {}
    for raw_pair in header.split(","):
        pair = raw_pair.strip()
        if not pair:
            raise unauthorized()
        name, _, value = pair.partition(" ")
        if name.endswith(":"):
            name = name[:-1]
        elif not value and ":" in name:
            name, _, value = name.partition(":")
        key = _NAMES.get(name.lower())
        value = value.strip()
        if key is None or not value or key in found:
            raise unauthorized()
        # Printable ASCII leaves one whitespace character to look for: the space.
        if not value.isprintable() or not value.isascii() or " " in value:
            raise unauthorized()
        found[key] = value
    return Credentials(**found)
