"""Checking a query against the fields a resource declares (issue 9, item 13).

Without this, a field the resource does not have, or a date no calendar holds, selects nothing
and the caller gets an empty list that looks like an answer. Field names resolve as record
fields do (``ceql_values``: case- and underscore-tolerant, ``DateSent`` is ``date_sent``), and
a field declared as an ``object`` or ``array`` also takes any path below it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from hubgate.kit.ceql_syntax import And, Comparison, Expr, In, IsNull, Like, Not, Or, OrderKey
from hubgate.kit.ceql_values import as_datetime

__all__ = ["CeqlFieldError", "check_fields"]

_NESTED = frozenset({"object", "array"})


class CeqlFieldError(ValueError):
    """A query names a field the resource lacks, or gives a date field something else."""


def _loose(name: str) -> str:
    return name.casefold().replace("_", "")


def _lookup(declared: Mapping[str, str], name: str) -> str | None:
    """The type of the declared field ``name`` designates, or None."""
    if name in declared:
        return declared[name]
    for key in (str.casefold, _loose):
        wanted = key(name)
        for candidate, kind in declared.items():
            if key(candidate) == wanted:
                return kind
    return None


def field_type(declared: Mapping[str, str], field: str) -> str | None:
    """``field``'s declared type; ``""`` for a path below an object field; None if unknown."""
    kind = _lookup(declared, field)
    if kind is not None:
        return kind
    parts = field.split(".")
    for stop in range(len(parts) - 1, 0, -1):
        outer = _lookup(declared, ".".join(parts[:stop]))
        if outer in _NESTED:
            return ""
    return None


def _comparisons(expr: Expr) -> Iterator[tuple[str, Sequence[object]]]:
    """Every field the expression names, with the literals it is compared with."""
    if isinstance(expr, And | Or):
        for item in expr.items:
            yield from _comparisons(item)
    elif isinstance(expr, Not):
        yield from _comparisons(expr.item)
    elif isinstance(expr, Comparison):
        yield expr.field, (expr.value,)
    elif isinstance(expr, In):
        yield expr.field, expr.values
    elif isinstance(expr, Like | IsNull):
        yield expr.field, ()


def check_fields(
    declared: Mapping[str, str],
    where: Expr | None,
    order: Sequence[OrderKey] = (),
) -> None:
    """Raise :class:`CeqlFieldError` for the first unknown field or non-date date literal.

    ``declared`` maps each field name to its type (``string``, ``number``, ``boolean``,
    ``date``, ``object``, ``array``); the caller adds the names the vendor filters on that
    are not response fields (Twilio's ``SmsEnabled``), with the type of literal they take.
    """
    named = [] if where is None else list(_comparisons(where))
    named.extend((key.field, ()) for key in order)
    for field, literals in named:
        kind = field_type(declared, field)
        if kind is None:
            raise CeqlFieldError(f"Unknown field {field!r}: the resource has no such field")
        if kind != "date":
            continue
        for literal in literals:
            if not isinstance(literal, str) or as_datetime(literal) is None:
                raise CeqlFieldError(
                    f"Invalid date {literal!r} for {field}: use a date such as '2026-01-31'"
                    " or a timestamp such as '2026-01-31T12:00:00Z'"
                )
