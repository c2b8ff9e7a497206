"""Object definitions, transformations and common resources: the rules, no SQL, no commit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.elements.sdk import Element
from hubgate.instances.service import get_owned
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.kit.sandbox import MIB
from hubgate.kit.sandbox import Limits as ScriptLimits
from hubgate.settings import Settings
from hubgate.transformations import schemas
from hubgate.transformations.mapping import (
    LEVELS,
    Level,
    Transformation,
    TransformationError,
    effective,
    parse_transformation,
    transform,
    with_level,
)
from hubgate.transformations.models import ObjectDefinition, StoredTransformation
from hubgate.transformations.paths import PathError, parse_path
from hubgate.transformations.repository import Place, TransformationRepository
from hubgate.transformations.resolution import element_defaults

Json = dict[str, Any]


def _above(level: Level) -> tuple[Level, ...]:
    """The levels whose objects ``level`` sees: itself and those above it, highest first."""
    return LEVELS[: LEVELS.index(level) + 1]


def _in_use(name: str) -> HubgateError:
    return HubgateError(409, f"The object definition {name!r} is used by a transformation")


def check_name(name: str) -> None:
    if len(name) > 200 or not re.fullmatch(schemas.NAME_PATTERN, name):
        raise bad_request(
            f"Invalid object name {name[:200]!r}: letters, digits, '_', '.' and '-' only"
        )


def check_storable(value: Any, where: str) -> None:
    """PostgreSQL's JSONB cannot hold a NUL character: refuse it as bad input, not a 500."""
    if isinstance(value, str):
        if "\x00" in value:
            raise bad_request(f"{where} contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, where)
            check_storable(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            check_storable(item, f"{where}[{n}]")


# ------------------------------------------------------------------------------ definitions


def _definition_fields(fields: Sequence[schemas.DefinitionField]) -> list[Json]:
    seen: set[str] = set()
    stored = []
    for n, field in enumerate(fields):
        try:
            path = parse_path(field.path)
        except PathError as error:
            raise bad_request(f"fields[{n}].path: {error}") from None
        if not path.plain:
            raise bad_request(f"fields[{n}].path: a field path takes only names, [n] and [*]")
        if field.path in seen:
            raise bad_request(f"fields[{n}].path: {field.path!r} is defined twice")
        seen.add(field.path)
        stored.append(field.model_dump(exclude_none=True))
    check_storable(stored, "fields")
    return stored


def definition_read(row: ObjectDefinition) -> schemas.DefinitionRead:
    return schemas.DefinitionRead.model_validate({"fields": row.fields, "level": row.level})


@cache
def system_definitions() -> dict[str, schemas.DefinitionRead]:
    """Hubgate's catalogue of common resources (``?systemOnly=true``; D322): ``messages``."""
    raw = json.loads(Path(__file__).with_name("system.json").read_text(encoding="utf-8"))
    return {
        name: schemas.DefinitionRead.model_validate({**body, "level": "system"})
        for name, body in raw.items()
    }


async def get_definition(session: AsyncSession, place: Place, name: str) -> ObjectDefinition:
    row = await TransformationRepository(session).definition(place, name)
    if row is None:
        raise HubgateError(404, f"No object definition found with name {name!r}")
    return row


async def create_definition(
    session: AsyncSession, place: Place, name: str, body: schemas.DefinitionBody
) -> ObjectDefinition:
    check_name(name)
    repo = TransformationRepository(session)
    if await repo.definition(place, name) is not None:
        raise HubgateError(409, f"An object definition named {name!r} already exists")
    row = ObjectDefinition(object_name=name, fields=_definition_fields(body.fields))
    place.owns(row)
    await repo.add(row)
    return row


async def replace_definition(
    session: AsyncSession, place: Place, name: str, body: schemas.DefinitionBody
) -> ObjectDefinition:
    row = await get_definition(session, place, name)
    row.fields = _definition_fields(body.fields)
    await TransformationRepository(session).flush()
    return row


async def delete_definition(session: AsyncSession, place: Place, name: str) -> None:
    """A definition that a transformation at its level or below uses stays (409)."""
    row = await get_definition(session, place, name)
    repo = TransformationRepository(session)
    if await repo.transformations_from(place, name):
        raise _in_use(name)
    await repo.remove([row])


async def create_definitions(
    session: AsyncSession, place: Place, bodies: dict[str, schemas.DefinitionBody]
) -> list[ObjectDefinition]:
    return [await create_definition(session, place, n, b) for n, b in bodies.items()]


async def list_definitions(session: AsyncSession, place: Place) -> Sequence[ObjectDefinition]:
    return await TransformationRepository(session).definitions_at(place)


async def delete_definitions(session: AsyncSession, place: Place) -> None:
    repo = TransformationRepository(session)
    rows = await repo.definitions_at(place)
    names = {r.object_name for r in rows}
    for used in await repo.transformations_from(place):
        if used.object_name in names:
            raise _in_use(used.object_name)
    await repo.remove(rows)


async def rename_definition(session: AsyncSession, place: Place, name: str, new_name: str) -> None:
    """Rename a definition and the transformations at its level and below that use it."""
    row = await get_definition(session, place, name)
    repo = TransformationRepository(session)
    check_name(new_name)
    if new_name == name:
        return
    if await repo.definition(place, new_name) is not None:
        raise HubgateError(409, f"An object definition named {new_name!r} already exists")
    moving = await repo.transformations_from(place, name)
    taken = {
        (t.level, t.owner_id, t.element_key)
        for t in await repo.transformations_from(place, new_name)
    }
    for t in moving:
        if (t.level, t.owner_id, t.element_key) in taken:
            raise HubgateError(409, f"A transformation named {new_name!r} already exists")
    row.object_name = new_name
    for t in moving:
        t.object_name = new_name
    await repo.flush()


# ------------------------------------------------------------------------------ transformations


def _stored_body(body: schemas.TransformationBody, level: Level) -> Json:
    """The body to store, once the engine can read it (a 400 naming the bad part otherwise)."""
    stored = body.model_dump(
        by_alias=True,
        exclude_none=True,
        include={"vendor_name", "fields", "configuration", "script", "is_legacy"},
    )
    # A field's level is where it is stored (D247): one echoed from a merged GET is dropped.
    stored["fields"] = [
        {k: v for k, v in f.items() if k != "level"} for f in stored.get("fields", [])
    ]
    check_storable(stored, "transformation")
    try:
        parse_transformation(stored, level)
    except TransformationError as error:
        raise bad_request(f"Invalid transformation: {error}") from None
    if stored.get("isLegacy"):
        raise bad_request("isLegacy scripts (v1) are not supported; use done(object)")
    return stored


def _parsed(row: StoredTransformation) -> Transformation:
    level = cast(Level, row.level)
    return with_level(parse_transformation(row.body, level), level)


async def _need_definition(session: AsyncSession, place: Place, name: str) -> None:
    """A transformation needs a definition of its object that its level sees (A.9)."""
    seen = _above(place.level)
    for row in await TransformationRepository(session).visible_definitions(place.tenant, name):
        if row.level in seen and (row.level != "instance" or row.owner_id == place.owner_id):
            return
    raise HubgateError(404, f"No object definition found with name {name!r}; create it first")


async def _chain(
    session: AsyncSession, place: Place, element_key: str, name: str
) -> list[StoredTransformation]:
    """The rows the transformation seen from ``place`` is made of, highest level first."""
    found = await TransformationRepository(session).chain(
        place.tenant, element_key, name, place.instance_id
    )
    return [found[level] for level in _above(place.level) if level in found]


def _start_date(row: StoredTransformation) -> str:
    return row.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")


def transformation_read(
    rows: Sequence[StoredTransformation], merged: Transformation
) -> schemas.TransformationRead:
    lowest = rows[-1]
    # A field without a level is the element's default's (D322).
    fields = [{**f.raw, "level": f.level or "system"} for f in merged.fields]
    return schemas.TransformationRead.model_validate(
        {
            "objectName": lowest.object_name,
            "level": lowest.level,
            "vendorName": merged.vendor_name,
            "fields": fields,
            "configuration": lowest.body.get("configuration"),
            "script": {"body": merged.script} if merged.script else None,
            "isLegacy": False,
            "startDate": _start_date(lowest),
            "elementKey": lowest.element_key,
            "elementInstanceId": lowest.instance_id,
        }
    )


def element_default_transformations(element: Element) -> dict[str, schemas.TransformationRead]:
    """The transformations ``element`` ships (D322), as a level's routes answer them."""
    return {
        name: schemas.TransformationRead.model_validate(
            {
                "objectName": name,
                "level": "system",
                "vendorName": parsed.vendor_name,
                "fields": [{**f.raw, "level": "system"} for f in parsed.fields],
                "configuration": element.transformations[name].get("configuration"),
                "script": {"body": parsed.script} if parsed.script else None,
                "isLegacy": False,
                "elementKey": element.key,
            }
        )
        for name, parsed in sorted(element_defaults(element).items())
    }


def _merged(
    element: Element, name: str, rows: Sequence[StoredTransformation]
) -> Transformation | None:
    """The effective transformation: the element's default (D322) above the stored levels."""
    chain = [_parsed(r) for r in rows]
    default = element_defaults(element).get(name)
    if default is not None:
        chain.insert(0, default)
    return effective(chain)


async def get_transformation(
    session: AsyncSession, place: Place, element_key: str, name: str
) -> schemas.TransformationRead:
    """The transformation as ``place`` stores it, merged per D36 with the levels above; 404
    when no level has one. ``element_view`` adds the element's default."""
    rows = await _chain(session, place, element_key, name)
    merged = effective([_parsed(r) for r in rows])
    if merged is None:
        raise HubgateError(404, f"No transformation found for object {name!r}")
    return transformation_read(rows, merged)


async def element_view(
    session: AsyncSession, place: Place, element: Element, name: str
) -> schemas.TransformationRead:
    """The transformation as ``place`` sees it, merged per D36 over the element's default
    (D322, D392); 404 when neither a level nor the element has one."""
    rows = await _chain(session, place, element.key, name)
    if not rows and name in element.transformations:
        return element_default_transformations(element)[name]
    merged = _merged(element, name, rows)
    if merged is None:
        raise HubgateError(404, f"No transformation found for object {name!r}")
    return transformation_read(rows, merged)


async def list_transformations(
    session: AsyncSession, place: Place, element: Element
) -> dict[str, schemas.TransformationRead]:
    names: set[str] = set(element.transformations)
    seen = _above(place.level)
    for row in await TransformationRepository(session).visible_transformations(place.tenant):
        if row.element_key != element.key or row.level not in seen:
            continue
        if row.level == "instance" and row.owner_id != place.owner_id:
            continue
        names.add(row.object_name)
    return {n: await element_view(session, place, element, n) for n in sorted(names)}


async def save_transformation(
    session: AsyncSession,
    place: Place,
    element_key: str,
    name: str,
    body: schemas.TransformationBody,
    *,
    create: bool | None,
) -> schemas.TransformationRead:
    """``create`` True: a new one (409 if there is one); False: replace (404 if none);
    None: either (``PUT /transformations``)."""
    check_name(name)
    stored = _stored_body(body, place.level)
    repo = TransformationRepository(session)
    row = await repo.transformation(place, element_key, name)
    if row is not None and create is True:
        raise HubgateError(409, f"A transformation for object {name!r} already exists")
    if row is None and create is False:
        raise HubgateError(404, f"No transformation found for object {name!r}")
    if row is None:
        await _need_definition(session, place, name)
        row = StoredTransformation(element_key=element_key, object_name=name, body=stored)
        place.owns(row)
        await repo.add(row)
    else:
        row.body = stored
        await repo.flush()
        await session.refresh(row)
    return await get_transformation(session, place, element_key, name)


async def delete_transformation(
    session: AsyncSession, place: Place, element_key: str, name: str
) -> None:
    repo = TransformationRepository(session)
    row = await repo.transformation(place, element_key, name)
    if row is None:
        raise HubgateError(404, f"No transformation found for object {name!r}")
    await repo.remove([row])


def script_limits(settings: Settings) -> ScriptLimits:
    return ScriptLimits(
        seconds=settings.transformation_script_seconds,
        memory_bytes=settings.transformation_script_memory_mib * MIB,
    )


async def execute(
    session: AsyncSession,
    place: Place,
    element: Element,
    name: str,
    body: schemas.ExecuteBody,
    limits: ScriptLimits,
) -> tuple[Any, str | None]:
    """Try a transformation out on ``payload`` (A.2): from the vendor, or with ``method``
    POST, PUT or PATCH towards it, over the element's default (D392). Returns the result and
    the ``Elements-Error`` text."""
    rows = await _chain(session, place, element.key, name)
    merged = _merged(element, name, rows)
    if merged is None:
        raise HubgateError(404, f"No transformation found for object {name!r}")
    from_vendor = body.method not in ("POST", "PUT", "PATCH")
    single = isinstance(body.payload, dict)
    objects = [body.payload] if isinstance(body.payload, dict) else body.payload
    result, error = await transform(merged, objects, from_vendor=from_vendor, limits=limits)
    return (result[0] if single else result), error


# ------------------------------------------------------------------------------ common resources


def _resource_read(
    name: str,
    definitions: Iterable[ObjectDefinition],
    transformations: Iterable[StoredTransformation],
    element_ids: dict[str, int],
) -> schemas.CommonResourceRead:
    fields = [
        {
            **f,
            "associatedLevel": d.level,
            "associatedId": d.owner_id if d.level == "instance" else None,
        }
        for d in sorted(definitions, key=lambda d: (LEVELS.index(cast(Level, d.level)), d.id))
        for f in d.fields
    ]
    instance_ids: set[int] = set()
    mapped: set[int] = set()
    for t in transformations:
        if t.instance_id is not None:
            instance_ids.add(t.instance_id)
        elif t.element_key in element_ids:
            mapped.add(element_ids[t.element_key])
    return schemas.CommonResourceRead.model_validate(
        {
            "name": name,
            "fields": fields,
            "elementInstanceIds": sorted(instance_ids),
            "mappedElementIds": sorted(mapped),
        }
    )


async def common_resources(
    session: AsyncSession, tenant: Tenant, element_ids: dict[str, int], name: str | None = None
) -> list[schemas.CommonResourceRead]:
    """Every object the tenant defines at any level, with where it is mapped (A.2)."""
    repo = TransformationRepository(session)
    by_name: dict[str, list[ObjectDefinition]] = {}
    for row in await repo.visible_definitions(tenant, name):
        by_name.setdefault(row.object_name, []).append(row)
    used: dict[str, list[StoredTransformation]] = {}
    for t in await repo.visible_transformations(tenant, name):
        used.setdefault(t.object_name, []).append(t)
    return [
        _resource_read(n, rows, used.get(n, []), element_ids) for n, rows in sorted(by_name.items())
    ]


async def common_resource(
    session: AsyncSession, tenant: Tenant, element_ids: dict[str, int], name: str
) -> schemas.CommonResourceRead:
    found = await common_resources(session, tenant, element_ids, name)
    if not found:
        raise HubgateError(404, f"No common resource found with name {name!r}")
    return found[0]


def _renamed_path(path: str, old: str, new: str) -> str:
    """``path`` with the canonical field ``old`` (or a part inside it) called ``new``."""
    if path == old:
        return new
    for joint in (".", "["):
        if path.startswith(old + joint):
            return new + path[len(old) :]
    return path


async def put_common_resource(
    session: AsyncSession, tenant: Tenant, body: schemas.CommonResourceBody
) -> None:
    """Upsert the definitions of every level the body names; rename ``changedFields``."""
    check_name(body.name)
    check_storable(body.model_dump(by_alias=True), "common resource")
    levels: dict[tuple[Level, int | None], list[schemas.DefinitionField]] = {}
    for field in body.fields:
        key = (field.associated_level, field.associated_id)
        if field.associated_level == "instance" and field.associated_id is None:
            raise bad_request("A field with associatedLevel instance needs an associatedId")
        levels.setdefault(key, []).append(schemas.DefinitionField(path=field.path, type=field.type))
    repo = TransformationRepository(session)
    for (level, instance_id), fields in levels.items():
        if level == "instance":
            assert instance_id is not None
            await get_owned(session, tenant, instance_id)
        place = Place(tenant, level, instance_id if level == "instance" else None)
        definition = schemas.DefinitionBody(fields=fields)
        if await repo.definition(place, body.name) is None:
            await create_definition(session, place, body.name, definition)
        else:
            await replace_definition(session, place, body.name, definition)
    for change in body.changed_fields:
        for t in await repo.visible_transformations(tenant, body.name):
            if change.associated_level is not None and t.level != change.associated_level:
                continue
            renamed = [
                {**f, "path": _renamed_path(str(f.get("path")), change.old_path, change.path)}
                for f in t.body.get("fields", [])
            ]
            t.body = {**t.body, "fields": renamed}
    await repo.flush()


async def rename_common_resource(
    session: AsyncSession, tenant: Tenant, name: str, new_name: str
) -> None:
    check_name(new_name)
    repo = TransformationRepository(session)
    definitions = await repo.visible_definitions(tenant, name)
    if not definitions:
        raise HubgateError(404, f"No common resource found with name {name!r}")
    if new_name == name:
        return
    if await repo.visible_definitions(tenant, new_name):
        raise HubgateError(409, f"A common resource named {new_name!r} already exists")
    rows: list[ObjectDefinition | StoredTransformation] = [
        *definitions,
        *await repo.visible_transformations(tenant, name),
    ]
    for row in rows:
        row.object_name = new_name
    await repo.flush()


async def delete_common_resource(session: AsyncSession, tenant: Tenant, name: str) -> None:
    """The whole resource goes: its definitions at every level and their transformations."""
    repo = TransformationRepository(session)
    definitions = await repo.visible_definitions(tenant, name)
    if not definitions:
        raise HubgateError(404, f"No common resource found with name {name!r}")
    await repo.remove([*definitions, *await repo.visible_transformations(tenant, name)])
