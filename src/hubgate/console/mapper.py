"""The console's mapper (D33's "map to a common resource" step; D323): what its page shows and
what its buttons do, over the transformations service and the hub pipeline. No SQL here.

One page per instance: choose a common resource (the tenant's, Hubgate's catalogue, or a new
name) and one of the element's list resources; then map each canonical field by picking a
vendor field from the resource's metadata (``Resource.fields``, D50); preview the mapping on a
live vendor object read through the hub pipeline; save it at instance or organization level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.elements.manifest import Resource
from hubgate.elements.sdk import Element
from hubgate.hub.service import fetch_all
from hubgate.instances.models import Instance
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.runtime import Runtime
from hubgate.transformations import schemas
from hubgate.transformations import service as transformations
from hubgate.transformations.mapping import (
    Transformation,
    TransformationError,
    parse_transformation,
    transform,
)
from hubgate.transformations.repository import Place
from hubgate.transformations.resolution import element_defaults

# Blank rows the page offers for canonical fields of one's own.
EXTRA_ROWS: Final = 3
MAX_ROWS: Final = 200
SaveLevel = Literal["instance", "organization"]
REMOVE_UNMAPPED: Final = [
    {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}
]


@dataclass(frozen=True)
class Choice:
    name: str
    label: str


@dataclass
class Row:
    """One canonical field and the vendor field it is read from (and written to)."""

    path: str
    vendor_path: str = ""
    write_path: str = ""
    type: str = ""
    fixed: bool = True  # a field of the definition, not a name typed on the page


@dataclass
class Preview:
    vendor: str | None = None
    canonical: str | None = None
    error: str | None = None
    empty: bool = False


@dataclass
class MapperView:
    resources: list[Choice]
    vendors: list[Choice]
    resource: str | None = None
    vendor: str | None = None
    vendor_fields: list[Choice] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    remove_unmapped: bool = True
    level: SaveLevel = "instance"
    preview: Preview | None = None
    errors: list[str] = field(default_factory=list)


def _resources_of(element: Element) -> dict[str, Resource]:
    """The element's resources a common resource can map: lists, addressed without ids."""
    return {
        r.path: r
        for r in element.manifest.resources
        if "GET" in r.operations
        and r.operations["GET"].list_key is not None
        and "{" not in r.path
        and r.fields
    }


async def _resource_choices(
    session: AsyncSession, runtime: Runtime, tenant: Tenant
) -> list[Choice]:
    ids = {e.key: e.id for e in runtime.registry}
    own = await transformations.common_resources(session, tenant, ids)
    choices = [Choice(r.name, r.name) for r in own]
    names = {c.name for c in choices}
    for name in transformations.system_definitions():
        if name not in names:
            choices.append(Choice(name, f"{name} (Hubgate's model)"))
    return choices


async def _canonical_fields(session: AsyncSession, tenant: Tenant, name: str) -> list[Row]:
    """The fields of ``name`` the tenant defines, else those of Hubgate's catalogue."""
    try:
        resource = await transformations.common_resource(session, tenant, {}, name)
        fields = [(f.path, f.type or "") for f in resource.fields]
    except HubgateError as exc:
        if exc.status != 404:
            raise
        system = transformations.system_definitions().get(name)
        fields = [(f.path, f.type or "") for f in system.fields] if system else []
    seen: dict[str, Row] = {}
    for path, kind in fields:
        seen.setdefault(path, Row(path, type=kind))
    return list(seen.values())


async def _current(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, instance: Instance, name: str
) -> Transformation | None:
    """What the instance uses for ``name`` now: its effective transformation, else the
    element's default."""
    place = Place(tenant, "instance", instance.id)
    try:
        read = await transformations.get_transformation(session, place, instance.element_key, name)
    except HubgateError as exc:
        if exc.status != 404:
            raise
        return element_defaults(runtime.registry.get(instance.element_key)).get(name)
    return parse_transformation(read.model_dump(by_alias=True, exclude_none=True))


def _prefilled(rows: list[Row], current: Transformation | None, vendor: Resource) -> bool:
    """Fill ``rows`` from the current mapping, else a vendor field of the same name; answers
    whether unmapped fields are removed."""
    names = {f.name.casefold(): f.name for f in vendor.fields}
    mapped = {f.path.text: f for f in current.fields} if current else {}
    for row in rows:
        found = mapped.get(row.path)
        if found is not None:
            row.vendor_path = found.vendor_path.text
            row.write_path = found.vendor_write_path.text if found.vendor_write_path else ""
        else:
            row.vendor_path = names.get(row.path.casefold(), "")
    for path, found in mapped.items():
        if all(r.path != path for r in rows):
            rows.append(Row(path, found.vendor_path.text, "", found.type or "", fixed=False))
    return current is None or not current.pass_through.from_vendor


async def view(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    instance: Instance,
    resource: str | None,
    vendor: str | None,
) -> MapperView:
    element = runtime.registry.get(instance.element_key)
    vendors = _resources_of(element)
    page = MapperView(
        resources=await _resource_choices(session, runtime, tenant),
        vendors=[Choice(path, path) for path in vendors],
    )
    resource = (resource or "").strip() or None
    vendor = (vendor or "").strip() or None
    if resource is None:
        return page
    transformations.check_name(resource)
    page.resource = resource
    current = await _current(session, runtime, tenant, instance, resource)
    if vendor is None and current is not None:
        vendor = current.vendor_name
    if vendor not in vendors:
        if vendor is not None:
            page.errors.append(f"{element.manifest.name} has no list resource {vendor!r}")
        return page
    page.vendor = vendor
    chosen = vendors[vendor]
    page.vendor_fields = [Choice(f.name, f"{f.name} ({f.type})") for f in chosen.fields]
    page.rows = await _canonical_fields(session, tenant, resource)
    page.remove_unmapped = _prefilled(page.rows, current, chosen)
    page.rows += [Row("", fixed=False) for _ in range(EXTRA_ROWS)]
    return page


# --- what the form posts -----------------------------------------------------------------------


def posted_text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def posted_rows(form: Mapping[str, Any]) -> list[Row]:
    count = posted_text(form, "rows")
    total = min(int(count), MAX_ROWS) if count.isascii() and count.isdigit() else 0
    rows = []
    for n in range(total):
        path = posted_text(form, f"path-{n}")
        if path:
            rows.append(
                Row(
                    path,
                    posted_text(form, f"vendor-{n}"),
                    posted_text(form, f"write-{n}"),
                    posted_text(form, f"type-{n}"),
                    fixed=posted_text(form, f"fixed-{n}") == "true",
                )
            )
    return rows


def transformation_body(vendor: str, rows: list[Row], remove_unmapped: bool) -> dict[str, Any]:
    fields = []
    for row in rows:
        if not row.vendor_path:
            continue
        mapped: dict[str, Any] = {"path": row.path, "vendorPath": row.vendor_path}
        if row.write_path:
            mapped["vendorWritePath"] = row.write_path
        if row.type:
            mapped["type"] = row.type
        fields.append(mapped)
    return {
        "vendorName": vendor,
        "fields": fields,
        "configuration": REMOVE_UNMAPPED if remove_unmapped else None,
    }


M = TypeVar("M", bound=BaseModel)


def _valid(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise bad_request(f"This mapping cannot be saved: {where}: {problem['msg']}") from None


def _checked(body: dict[str, Any]) -> Transformation:
    try:
        return parse_transformation(body)
    except TransformationError as error:
        raise bad_request(f"This mapping cannot be used: {error}") from None


async def preview(runtime: Runtime, instance: Instance, body: dict[str, Any]) -> Preview:
    """The mapping on the newest object of the vendor resource, read live through the hub
    pipeline, as the try-it-out call (``execute``) maps a payload."""
    transformation = _checked(body)
    hub = runtime.registry.get(instance.element_key).manifest.hub
    try:
        found = await fetch_all(
            runtime, instance, f"/hubs/{hub}/{body['vendorName']}", max_records=1
        )
    except HubgateError as exc:
        return Preview(error=f"{exc.status}: {exc.message}")
    if not found:
        return Preview(empty=True)
    limits = transformations.script_limits(runtime.settings)
    mapped, error = await transform(transformation, found, from_vendor=True, limits=limits)
    return Preview(
        vendor=json.dumps(found[0], indent=2, ensure_ascii=False),
        canonical=json.dumps(mapped[0], indent=2, ensure_ascii=False),
        error=error,
    )


async def save(
    session: AsyncSession,
    tenant: Tenant,
    instance: Instance,
    name: str,
    body: dict[str, Any],
    rows: list[Row],
    level: SaveLevel,
) -> None:
    """Store the mapping at ``level``; canonical fields typed on the page join the
    organization's definition (created when the tenant has none)."""
    transformations.check_name(name)
    _checked(body)
    organization = Place(tenant, "organization")
    try:
        known = await transformations.common_resource(session, tenant, {}, name)
        paths = {f.path for f in known.fields}
    except HubgateError as exc:
        if exc.status != 404:
            raise
        paths = set()
    missing = [r for r in rows if r.path not in paths]
    if missing or not paths:
        try:
            current = await transformations.get_definition(session, organization, name)
        except HubgateError as exc:
            if exc.status != 404:
                raise
            current = None
        fields = [
            *(current.fields if current else []),
            *({"path": r.path, "type": r.type or None} for r in missing),
        ]
        definition = _valid(schemas.DefinitionBody, {"fields": fields})
        if current is not None:
            await transformations.replace_definition(session, organization, name, definition)
        else:
            await transformations.create_definition(session, organization, name, definition)
    place = organization if level == "organization" else Place(tenant, "instance", instance.id)
    await transformations.save_transformation(
        session,
        place,
        instance.element_key,
        name,
        _valid(schemas.TransformationBody, body),
        create=None,
    )
