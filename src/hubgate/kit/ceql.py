"""CEQL, the query language of Open Connectors' ``where``, ``orderBy`` and ``fields`` (D23).

Framework-free; the hub pipeline uses it as::

    expr = parse(where)                      # CeqlSyntaxError -> 400 naming the position
    p = plan(expr, element_pushable_fields)  # p.vendor -> vendor query parameters
    rows = [r for r in vendor_rows if p.residual is None or evaluate(p.residual, r)]
    rows = sort_records(rows, parse_order_by(order_by))
    rows = [project(r, parse_fields(fields)) for r in rows]

The pieces live in sibling modules, re-exported here:

* ``ceql_syntax``: the grammar (in its docstring), the AST (frozen dataclasses ``Comparison``,
  ``Like``, ``In``, ``IsNull``, ``And``, ``Or``, ``Not``; ``Expr`` is their union; literal
  ``Value`` is ``str | bool | int | Decimal``), ``parse``, ``parse_order_by``,
  ``parse_fields`` and ``to_ceql`` (canonical text; ``parse(to_ceql(e)) == e``).
* ``ceql_values``: how a field is found in a record (case-, underscore- and path-tolerant:
  ``DateSent`` finds ``date_sent``) and how values compare (numbers numerically, timestamps as
  aware datetimes including Twilio's RFC 2822, booleans as booleans, strings case-sensitively).
* ``ceql_eval``: ``evaluate`` (SQL three-valued logic; only *true* selects a record),
  ``sort_records`` (stable, nulls last) and ``project``.
* ``ceql_plan``: ``plan`` and ``PushableField``: vendor pre-filters that never change the answer.

Decisions where Open Connectors' documentation is silent (D23 leaves them to us):

* ``LIKE`` is case-insensitive (``%`` any run, ``_`` one character, no escape character),
  because Open Connectors users expect vendor-style searches; ``=`` on strings is
  case-sensitive.
* A date-only literal (``'2026-01-01'``) is midnight UTC; a timestamp without a zone is UTC.
* ``field = null`` is a syntax error pointing to ``IS NULL``; there is no null literal.
"""

from __future__ import annotations

from hubgate.kit.ceql_eval import Resolver, evaluate, project, sort_records
from hubgate.kit.ceql_plan import Plan, PushableField, plan
from hubgate.kit.ceql_syntax import (
    COMPARISON_OPS,
    KEYWORDS,
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    CeqlSyntaxError,
    Comparison,
    Expr,
    In,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    Value,
    parse,
    parse_fields,
    parse_order_by,
    to_ceql,
)
from hubgate.kit.ceql_values import resolve_field

__all__ = [
    "COMPARISON_OPS",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "CeqlSyntaxError",
    "Comparison",
    "Expr",
    "In",
    "IsNull",
    "Like",
    "Not",
    "Or",
    "OrderKey",
    "Plan",
    "PushableField",
    "Resolver",
    "Value",
    "evaluate",
    "parse",
    "parse_fields",
    "parse_order_by",
    "plan",
    "project",
    "resolve_field",
    "sort_records",
    "to_ceql",
]
