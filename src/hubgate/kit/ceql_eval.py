"""Evaluating CEQL over records: ``evaluate`` (where), ``sort_records`` (orderBy), ``project``.

``evaluate`` uses SQL's three-valued logic: a predicate on a null/missing field, or on values
that cannot be compared (see ``ceql_values.compare``), is *unknown*; ``NOT unknown`` is unknown;
``AND``/``OR`` follow Kleene's tables; a record is selected only when the whole expression is
*true*. So ``x != 5``, ``NOT x = 5`` and ``x NOT IN (5)`` all reject a record without ``x``,
as in SQL, and ``x IS NULL`` is the way to ask for missing values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar

from hubgate.kit.ceql_syntax import (
    And,
    Comparison,
    Expr,
    In,
    IsNull,
    Like,
    Or,
    OrderKey,
)
from hubgate.kit.ceql_values import compare, like_match, locate, resolve_field, sort_key, text_of

__all__ = ["Resolver", "evaluate", "project", "sort_records"]

R = TypeVar("R", bound=Mapping[str, Any])

Resolver: TypeAlias = Callable[[Mapping[str, Any], str], Any]
"""``resolve(record, field) -> value``; None means null or missing."""

_OPS: Final[dict[str, Callable[[int], bool]]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _truth(expr: Expr, record: Mapping[str, Any], resolve: Resolver) -> bool | None:
    """True, False, or None for SQL's unknown."""
    if isinstance(expr, Comparison):
        order = compare(resolve(record, expr.field), expr.value)
        return None if order is None else _OPS[expr.op](order)
    if isinstance(expr, Like):
        text = text_of(resolve(record, expr.field))
        return None if text is None else like_match(text, expr.pattern) != expr.negated
    if isinstance(expr, In):
        # x IN (a, b) is x = a OR x = b; x NOT IN (a, b) is x != a AND x != b.
        actual = resolve(record, expr.field)
        orders = [compare(actual, value) for value in expr.values]
        if any(order == 0 for order in orders):
            return not expr.negated
        if any(order is None for order in orders):
            return None
        return expr.negated
    if isinstance(expr, IsNull):
        return (resolve(record, expr.field) is None) != expr.negated
    if isinstance(expr, And):
        unknown = False
        for item in expr.items:
            truth = _truth(item, record, resolve)
            if truth is False:
                return False
            unknown = unknown or truth is None
        return None if unknown else True
    if isinstance(expr, Or):
        unknown = False
        for item in expr.items:
            truth = _truth(item, record, resolve)
            if truth is True:
                return True
            unknown = unknown or truth is None
        return None if unknown else False
    truth = _truth(expr.item, record, resolve)  # Not: the only node left
    return None if truth is None else not truth


def evaluate(expr: Expr, record: Mapping[str, Any], resolve: Resolver | None = None) -> bool:
    """Whether ``record`` satisfies ``expr`` (unknown counts as not satisfied)."""
    return _truth(expr, record, resolve or resolve_field) is True


def sort_records(
    records: Iterable[R], keys: Iterable[OrderKey], resolve: Resolver | None = None
) -> list[R]:
    """Records ordered by ``keys``: stable, null/missing values last in either direction."""
    resolve = resolve or resolve_field
    ordered = list(records)
    # One stable pass per key, least significant first, gives the lexicographic order.
    for key in reversed(list(keys)):
        present: list[tuple[tuple[int, Any], R]] = []
        missing: list[R] = []
        for record in ordered:
            value = resolve(record, key.field)
            if value is None:
                missing.append(record)
            else:
                present.append((sort_key(value), record))
        # reverse=True keeps equal elements in their original order (documented stability).
        present.sort(key=lambda pair: pair[0], reverse=key.descending)
        ordered = [record for _, record in present] + missing
    return ordered


def project(record: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Only ``fields`` of ``record``, under the record's own key spelling.

    Names resolve as in ``resolve_field`` (but never through list indexes); a dotted path keeps
    its nesting (``a.b`` gives ``{"a": {"b": ...}}``); a missing field is left out; asking for
    ``a`` and ``a.b`` keeps all of ``a``. No fields at all means the whole record. Values are
    not copied.
    """
    names = list(fields)
    if not names:
        return dict(record)
    out: dict[str, Any] = {}
    whole: set[tuple[str | int, ...]] = set()  # key paths copied in full
    for name in names:
        found = locate(record, name, index_lists=False)
        if found is None:
            continue
        value, path = found
        if any(path[:i] in whole for i in range(1, len(path) + 1)):
            continue  # already inside something copied whole
        node = out
        for key in path[:-1]:
            child = node.get(str(key))
            if not isinstance(child, dict):
                child = node[str(key)] = {}
            node = child
        node[str(path[-1])] = value
        whole.add(path)
    return out
