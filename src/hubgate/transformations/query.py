"""CEQL over canonical fields (D38): what goes to the vendor, what Hubgate checks after mapping.

``rewrite`` takes a parsed ``where``, ``orderBy`` and ``fields`` on a common resource and splits
them:

* A field the common resource does not have (not in its definition, not mapped) is an
  ``UnknownFieldError`` naming it: the hub answers 400.
* A field is *vendor-readable* when the transformation maps it, in answers, straight from a
  vendor path of names only (``to`` <- ``to``, ``city`` <- ``address.city``): no ``[n]``,
  ``[*]``, filter, ``.size()`` or ``transformDate``, since those change what the value is.
  With a script nothing is vendor-readable: a script may rewrite any field.
* Each top-level AND conjunct of ``where`` whose fields are all vendor-readable is rewritten to
  the vendor names (``vendor_where``): the hub plans it as on a vendor resource (push-down
  where the element can, the rest evaluated on the vendor's rows), which gives the same rows as
  evaluating it after mapping, because the values are copied unchanged. Every other conjunct
  stays in canonical names (``local_where``), evaluated after the mapping.
* ``orderBy`` goes to the vendor side only as a whole (every key vendor-readable), since
  sorting by some keys before and others after the mapping is not one order.
* ``fields`` is always applied after the mapping (``local_fields``); ``vendor_fields`` names
  the vendor fields needed when every requested field is vendor-readable and nothing is left
  to check after the mapping (the requested fields plus those the vendor-side filter and order
  read), so that the hub may ask the vendor for less; empty means "everything".

Names match as CEQL matches record fields elsewhere: exactly, else ignoring case and
underscores when that finds one field only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hubgate.kit.ceql import And, Comparison, Expr, In, IsNull, Like, Not, Or, OrderKey
from hubgate.transformations.mapping import Transformation

__all__ = ["CanonicalQuery", "UnknownFieldError", "rewrite"]


class UnknownFieldError(ValueError):
    """A CEQL field that the common resource does not have."""

    def __init__(self, field: str, resource: str | None = None) -> None:
        where = f"common resource '{resource}'" if resource else "the common resource"
        super().__init__(f"Unknown field '{field}': {where} has no such field")
        self.field = field


@dataclass(frozen=True, slots=True)
class CanonicalQuery:
    vendor_where: Expr | None
    local_where: Expr | None
    vendor_order_by: tuple[OrderKey, ...]
    local_order_by: tuple[OrderKey, ...]
    vendor_fields: tuple[str, ...]
    local_fields: tuple[str, ...]


def _fold(name: str) -> str:
    return name.casefold().replace("_", "")


class _Names:
    def __init__(self, transformation: Transformation, known: Iterable[str], resource: str | None):
        self.resource = resource
        self.vendor: dict[str, str] = {}
        if transformation.script is None:
            for mapped in transformation.fields:
                read = mapped.vendor_path
                if (
                    mapped.dropped.from_vendor
                    or mapped.date_pattern is not None
                    or read.segments is None
                    or read.size
                    or not all(isinstance(s, str) for s in read.segments)
                ):
                    continue
                self.vendor[mapped.path.text] = ".".join(str(s) for s in read.segments)
        self.known = set(known) | set(transformation.field_paths)
        self.folded: dict[str, list[str]] = {}
        for name in self.known:
            self.folded.setdefault(_fold(name), []).append(name)

    def canonical(self, field: str) -> str:
        if field in self.known:
            return field
        candidates = self.folded.get(_fold(field), [])
        if len(candidates) == 1:
            return candidates[0]
        raise UnknownFieldError(field, self.resource)

    def vendor_name(self, field: str) -> str | None:
        return self.vendor.get(self.canonical(field))


def _fields(expr: Expr) -> list[str]:
    if isinstance(expr, And | Or):
        return [name for item in expr.items for name in _fields(item)]
    if isinstance(expr, Not):
        return _fields(expr.item)
    return [expr.field]


def _renamed(expr: Expr, rename: dict[str, str]) -> Expr:
    if isinstance(expr, And):
        return And(tuple(_renamed(item, rename) for item in expr.items))
    if isinstance(expr, Or):
        return Or(tuple(_renamed(item, rename) for item in expr.items))
    if isinstance(expr, Not):
        return Not(_renamed(expr.item, rename))
    if isinstance(expr, Comparison):
        return Comparison(rename[expr.field], expr.op, expr.value)
    if isinstance(expr, Like):
        return Like(rename[expr.field], expr.pattern, expr.negated)
    if isinstance(expr, In):
        return In(rename[expr.field], expr.values, expr.negated)
    assert isinstance(expr, IsNull)
    return IsNull(rename[expr.field], expr.negated)


def _joined(items: list[Expr]) -> Expr | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


def rewrite(
    transformation: Transformation,
    known_fields: Iterable[str],
    where: Expr | None = None,
    order_by: Sequence[OrderKey] = (),
    fields: Sequence[str] = (),
    *,
    resource: str | None = None,
) -> CanonicalQuery:
    """Split a canonical query into its vendor part and its after-mapping part (D38).

    ``known_fields`` are the paths of the common resource's definition; the transformation's
    own paths count as known too. ``resource`` names the common resource in errors.
    """
    names = _Names(transformation, known_fields, resource)
    vendor: list[Expr] = []
    local: list[Expr] = []
    conjuncts = () if where is None else where.items if isinstance(where, And) else (where,)
    for conjunct in conjuncts:
        used = _fields(conjunct)
        mapped = {field: names.vendor_name(field) for field in used}
        if all(mapped.values()):
            vendor.append(_renamed(conjunct, {k: v for k, v in mapped.items() if v}))
        else:
            local.append(_renamed(conjunct, {field: names.canonical(field) for field in used}))
    order_vendor = [names.vendor_name(key.field) for key in order_by]
    if order_by and all(order_vendor):
        vendor_order = tuple(
            OrderKey(name, key.descending)
            for name, key in zip(order_vendor, order_by, strict=True)
            if name
        )
        local_order: tuple[OrderKey, ...] = ()
    else:
        vendor_order = ()
        local_order = tuple(OrderKey(names.canonical(k.field), k.descending) for k in order_by)
    local_fields = tuple(names.canonical(name) for name in fields)
    wanted = [names.vendor_name(name) for name in fields]
    vendor_fields: tuple[str, ...] = ()
    if fields and all(wanted) and not local and not local_order:
        # The vendor's rows must still hold what the vendor-side filter and order read.
        needed = [w for w in wanted if w]
        needed += [name for item in vendor for name in _fields(item)]
        needed += [key.field for key in vendor_order]
        vendor_fields = tuple(dict.fromkeys(needed))
    return CanonicalQuery(
        vendor_where=_joined(vendor),
        local_where=_joined(local),
        vendor_order_by=vendor_order,
        local_order_by=local_order,
        vendor_fields=vendor_fields,
        local_fields=local_fields,
    )
