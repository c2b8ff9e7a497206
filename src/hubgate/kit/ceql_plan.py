"""Push-down planning: which parts of a where clause the vendor can pre-filter.

An element declares, per CEQL field, the vendor query parameter and the operators it takes
(``PushableField``). ``plan`` picks the predicates that can go to the vendor:

* only top-level AND conjuncts (or the whole expression when it is a single comparison), since
  a conjunct that the vendor applies can only remove rows the whole expression rejects anyway;
  anything under OR or NOT, and every LIKE, IN or IS NULL, stays local;
* only ``Comparison`` nodes whose field is declared, whose operator the field supports, and
  whose literal is of a kind the field accepts (``kinds``: ``string``, ``date`` (a string that
  reads as a timestamp), ``number``, ``boolean``; strings only by default, because a numeric
  literal compares numerically here, ``to = 15550001`` matching ``"+15550001"``, while a
  vendor's text match would not return that row);
* at most one per (vendor parameter, operator), because a query parameter is sent once.

Correctness rule: pushing must never change the answer. Vendors are often coarser than CEQL
(Twilio's ``DateSent`` filters by whole GMT days), so a pushed predicate is normally only a
*pre-filter* and ``Plan.residual`` still contains it: unless a field is declared ``exact``, the
residual is the whole original expression and Hubgate re-checks every row the vendor returns.
For a field declared ``exact=True`` the vendor's answer is taken as final and the pushed
conjunct is dropped from the residual. Either way the element vouches that the vendor's filter
keeps every row that CEQL's own semantics keep, for the declared ops and kinds (for Twilio's
``DateSent``: ``kinds={"date"}``, so a value Twilio cannot read is never sent). A caller that
cannot translate a pushed predicate may simply not send it, except for exact fields, whose
predicates are no longer in the residual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from hubgate.kit.ceql_syntax import COMPARISON_OPS, And, Comparison, Expr, Value
from hubgate.kit.ceql_values import as_datetime

__all__ = ["Plan", "PushableField", "plan"]


@dataclass(frozen=True, slots=True)
class PushableField:
    """How one CEQL field maps to a vendor query parameter.

    ``ops`` are the CEQL operators the vendor supports for it; ``exact`` says the vendor applies
    them with exactly CEQL's semantics, so Hubgate need not re-check them; ``kinds`` are the
    literal kinds it takes (``string``, ``date``, ``number``, ``boolean``).
    """

    vendor_name: str
    ops: frozenset[str]
    exact: bool = False
    kinds: frozenset[str] = frozenset({"string"})

    def __post_init__(self) -> None:
        # Accept any collection (a set literal reads naturally in manifests) but store
        # frozensets so the object stays hashable.
        object.__setattr__(self, "ops", frozenset(self.ops))
        object.__setattr__(self, "kinds", frozenset(self.kinds))
        unknown = self.ops - COMPARISON_OPS
        if unknown:
            raise ValueError(f"unknown CEQL operators for push-down: {sorted(unknown)}")
        unknown = self.kinds - _KINDS
        if unknown:
            raise ValueError(f"unknown literal kinds for push-down: {sorted(unknown)}")
        if not self.vendor_name:
            raise ValueError("a pushable field needs a vendor parameter name")


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of ``plan``.

    ``pushed``: the comparisons to send, as the caller wrote them. ``vendor``: the same
    comparisons, index for index, with ``field`` replaced by the vendor parameter name.
    ``residual``: what Hubgate must still evaluate on the vendor's rows (None: nothing).
    """

    pushed: tuple[Comparison, ...]
    residual: Expr | None
    vendor: tuple[Comparison, ...] = ()


_KINDS = frozenset({"string", "date", "number", "boolean"})


def _accepts(field: PushableField, value: Value) -> bool:
    if isinstance(value, bool):
        return "boolean" in field.kinds
    if isinstance(value, int | Decimal):
        return "number" in field.kinds
    if "string" in field.kinds:
        return True
    return "date" in field.kinds and as_datetime(value) is not None


def _fold(name: str) -> str:
    # The same looseness as record field resolution: DateSent, datesent and date_sent are one.
    return name.casefold().replace("_", "")


def plan(expr: Expr | None, pushable: Mapping[str, PushableField]) -> Plan:
    """Split ``expr`` into vendor pre-filters and the residual Hubgate evaluates itself."""
    if expr is None:
        return Plan((), None)
    index: dict[str, PushableField] = {}
    for name, declared in pushable.items():
        key = _fold(name)
        if index.setdefault(key, declared) != declared:
            raise ValueError(f"pushable fields {name!r} and another collide as {key!r}")
    conjuncts = expr.items if isinstance(expr, And) else (expr,)
    pushed: list[Comparison] = []
    vendor: list[Comparison] = []
    used: set[tuple[str, str]] = set()
    settled: set[int] = set()  # positions of conjuncts the vendor applies exactly
    for position, conjunct in enumerate(conjuncts):
        if not isinstance(conjunct, Comparison):
            continue
        field = index.get(_fold(conjunct.field))
        if field is None or conjunct.op not in field.ops or not _accepts(field, conjunct.value):
            continue
        slot = (field.vendor_name, conjunct.op)
        if slot in used:
            continue
        used.add(slot)
        pushed.append(conjunct)
        vendor.append(Comparison(field.vendor_name, conjunct.op, conjunct.value))
        if field.exact:
            settled.add(position)
    if not settled:
        residual: Expr | None = expr
    else:
        rest = [item for position, item in enumerate(conjuncts) if position not in settled]
        residual = None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))
    return Plan(tuple(pushed), residual, tuple(vendor))
