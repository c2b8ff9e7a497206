"""Object definitions, transformations and common resources (D35, D36): routes only.

``{level}`` is ``organizations``, ``accounts``, ``accounts/{accountId}`` or
``instances/{instanceId}``: each route is written once in a router made per level, and the
level's dependency says whose objects it works on (a ``Place``).
"""

# No ``from __future__ import annotations``: each level's router is made by a function, and
# FastAPI must read the dependency in its routes' annotations when the function runs.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from hubgate.db.tenancy import Tenant
from hubgate.deps import CredentialsDep, RuntimeDep, SessionDep, TenantDep, read_json
from hubgate.formulas import service as formulas_service
from hubgate.instances.endpoints import InstanceRefDep, instance_ref
from hubgate.instances.models import Instance
from hubgate.instances.service import by_token, get_owned
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.openapi_doc import ERROR_TEXT, json_body, ok
from hubgate.runtime import Runtime
from hubgate.transformations import schemas, service
from hubgate.transformations.repository import Place

router = APIRouter(tags=["common resources"])
# Writes meet a name already taken, or a definition a transformation still uses (D250-D259).
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": ERROR_TEXT[409]}}

PlaceOf = Callable[..., Awaitable[Place]]
InstanceOf = Callable[..., Awaitable[Instance]]
# Names as stored (no NUL, which PostgreSQL refuses); a bad one is a D9 400.
ObjectNameParam = Annotated[str, Path(max_length=200, pattern=schemas.NAME_PATTERN)]
DefinitionMap = dict[str, schemas.DefinitionRead]
TransformationMap = dict[str, schemas.TransformationRead]


async def organization_place(tenant: TenantDep) -> Place:
    return Place(tenant, "organization")


async def account_place(tenant: TenantDep) -> Place:
    return Place(tenant, "account")


async def account_id_place(account_id: int, tenant: TenantDep) -> Place:
    # A user works on its own account's objects; any other account is not there (D4).
    if account_id != tenant.account_id:
        raise HubgateError(404, f"No account found with id {account_id}")
    return Place(tenant, "account")


def _instance_tenant(instance: Instance) -> Tenant:
    return Tenant(instance.organization_id, instance.account_id, instance.user_id, "")


async def instance_place(instance: InstanceRefDep) -> Place:
    return Place(_instance_tenant(instance), "instance", instance.id)


async def token_instance(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Instance:
    return await by_token(session, runtime, credentials)


def _element_key(runtime: Runtime, key_or_id: str) -> str:
    return runtime.registry.get(key_or_id).key


# ------------------------------------------------------------------------------ definitions


def definition_routes(place_of: PlaceOf) -> APIRouter:
    routes = APIRouter()
    PlaceDep = Annotated[Place, Depends(place_of)]  # noqa: N806
    one = "/objects/{object_name}/definitions"

    @routes.post(
        one,
        response_model_exclude_none=True,
        response_model=schemas.DefinitionRead,
        openapi_extra=json_body(schemas.DefinitionBody),
        responses=CONFLICT,
    )
    async def create_definition(
        object_name: ObjectNameParam, request: Request, session: SessionDep, place: PlaceDep
    ) -> schemas.DefinitionRead:
        body = await read_json(request, schemas.DefinitionBody)
        row = await service.create_definition(session, place, object_name, body)
        await session.commit()
        return service.definition_read(row)

    @routes.get(one, response_model=schemas.DefinitionRead, response_model_exclude_none=True)
    async def get_definition(
        object_name: ObjectNameParam, session: SessionDep, place: PlaceDep
    ) -> schemas.DefinitionRead:
        return service.definition_read(await service.get_definition(session, place, object_name))

    @routes.put(
        one,
        response_model_exclude_none=True,
        response_model=schemas.DefinitionRead,
        openapi_extra=json_body(schemas.DefinitionBody),
        responses=CONFLICT,
    )
    async def replace_definition(
        object_name: ObjectNameParam, request: Request, session: SessionDep, place: PlaceDep
    ) -> schemas.DefinitionRead:
        body = await read_json(request, schemas.DefinitionBody)
        row = await service.replace_definition(session, place, object_name, body)
        await session.commit()
        return service.definition_read(row)

    @routes.delete(
        one, response_model_exclude_none=True, response_model=schemas.Deleted, responses=CONFLICT
    )
    async def delete_definition(
        object_name: ObjectNameParam, session: SessionDep, place: PlaceDep
    ) -> schemas.Deleted:
        await service.delete_definition(session, place, object_name)
        await session.commit()
        return schemas.Deleted()

    @routes.patch(
        "/objects/{object_name}",
        response_model_exclude_none=True,
        response_model=schemas.DefinitionRead,
        openapi_extra=json_body(schemas.RenameObject),
        responses=CONFLICT,
    )
    async def rename_definition(
        object_name: ObjectNameParam, request: Request, session: SessionDep, place: PlaceDep
    ) -> schemas.DefinitionRead:
        """Rename the definition and the transformations at its level and below that use it."""
        body = await read_json(request, schemas.RenameObject)
        await service.rename_definition(session, place, object_name, body.object_name)
        await session.commit()
        row = await service.get_definition(session, place, body.object_name)
        return service.definition_read(row)

    return routes


router.include_router(definition_routes(organization_place), prefix="/organizations")
router.include_router(definition_routes(account_place), prefix="/accounts")
router.include_router(definition_routes(account_id_place), prefix="/accounts/{account_id:int}")
router.include_router(definition_routes(instance_place), prefix="/instances/{instance_id:int}")

OrganizationDep = Annotated[Place, Depends(organization_place)]
SystemOnlyParam = Annotated[bool, Query(alias="systemOnly")]


@router.post(
    "/organizations/objects/definitions",
    response_model_exclude_none=True,
    response_model=DefinitionMap,
    openapi_extra=json_body(schemas.DefinitionsBody),
    responses=CONFLICT,
)
async def create_definitions(
    request: Request, session: SessionDep, place: OrganizationDep
) -> DefinitionMap:
    body = await read_json(request, schemas.DefinitionsBody)
    rows = await service.create_definitions(session, place, body.root)
    await session.commit()
    return {row.object_name: service.definition_read(row) for row in rows}


@router.get(
    "/organizations/objects/definitions",
    response_model_exclude_none=True,
    response_model=DefinitionMap,
)
async def list_definitions(
    session: SessionDep, place: OrganizationDep, system_only: SystemOnlyParam = False
) -> DefinitionMap:
    """The organization's definitions; with ``systemOnly=true`` Hubgate's catalogue (D322)."""
    if system_only:
        return service.system_definitions()
    rows = await service.list_definitions(session, place)
    return {row.object_name: service.definition_read(row) for row in rows}


@router.delete(
    "/organizations/objects/definitions",
    response_model_exclude_none=True,
    response_model=schemas.Deleted,
    responses=CONFLICT,
)
async def delete_definitions(session: SessionDep, place: OrganizationDep) -> schemas.Deleted:
    """Every organization definition; a 409 while a transformation uses one."""
    await service.delete_definitions(session, place)
    await session.commit()
    return schemas.Deleted()


# ------------------------------------------------------------------------------ transformations


async def _save(
    request: Request,
    session: SessionDep,
    place: Place,
    element_key: str,
    object_name: str,
    *,
    create: bool,
) -> schemas.TransformationRead:
    body = await read_json(request, schemas.TransformationBody)
    saved = await service.save_transformation(
        session, place, element_key, object_name, body, create=create
    )
    await session.commit()
    return saved


def element_transformation_routes(place_of: PlaceOf) -> APIRouter:
    """``/{level}/elements/{keyOrId}/transformations[/{objectName}]``, organization and account."""
    routes = APIRouter()
    PlaceDep = Annotated[Place, Depends(place_of)]  # noqa: N806
    many = "/elements/{key_or_id}/transformations"
    one = many + "/{object_name}"
    body = json_body(schemas.TransformationBody)

    @routes.get(many, response_model=TransformationMap, response_model_exclude_none=True)
    async def list_transformations(
        key_or_id: str, session: SessionDep, runtime: RuntimeDep, place: PlaceDep
    ) -> TransformationMap:
        return await service.list_transformations(session, place, runtime.registry.get(key_or_id))

    @routes.post(
        one,
        openapi_extra=body,
        response_model=schemas.TransformationRead,
        response_model_exclude_none=True,
        responses=CONFLICT,
    )
    async def create_transformation(
        key_or_id: str,
        object_name: ObjectNameParam,
        request: Request,
        session: SessionDep,
        runtime: RuntimeDep,
        place: PlaceDep,
    ) -> schemas.TransformationRead:
        key = _element_key(runtime, key_or_id)
        return await _save(request, session, place, key, object_name, create=True)

    @routes.get(one, response_model=schemas.TransformationRead, response_model_exclude_none=True)
    async def get_transformation(
        key_or_id: str,
        object_name: ObjectNameParam,
        session: SessionDep,
        runtime: RuntimeDep,
        place: PlaceDep,
    ) -> schemas.TransformationRead:
        element = runtime.registry.get(key_or_id)
        return await service.element_view(session, place, element, object_name)

    @routes.put(
        one,
        openapi_extra=body,
        response_model=schemas.TransformationRead,
        response_model_exclude_none=True,
        responses=CONFLICT,
    )
    async def replace_transformation(
        key_or_id: str,
        object_name: ObjectNameParam,
        request: Request,
        session: SessionDep,
        runtime: RuntimeDep,
        place: PlaceDep,
    ) -> schemas.TransformationRead:
        key = _element_key(runtime, key_or_id)
        return await _save(request, session, place, key, object_name, create=False)

    @routes.delete(
        one, response_model_exclude_none=True, response_model=schemas.Deleted, responses=CONFLICT
    )
    async def delete_transformation(
        key_or_id: str,
        object_name: ObjectNameParam,
        session: SessionDep,
        runtime: RuntimeDep,
        place: PlaceDep,
    ) -> schemas.Deleted:
        key = _element_key(runtime, key_or_id)
        await service.delete_transformation(session, place, key, object_name)
        await session.commit()
        return schemas.Deleted()

    return routes


def instance_transformation_routes(instance_of: InstanceOf) -> APIRouter:
    """``/instances/{id}/transformations[/{objectName}]`` and the Element token's variant."""
    routes = APIRouter()
    InstanceDep = Annotated[Instance, Depends(instance_of)]  # noqa: N806
    many = "/transformations"
    one = many + "/{object_name}"
    body = json_body(schemas.TransformationBody)

    def place(instance: Instance) -> Place:
        return Place(_instance_tenant(instance), "instance", instance.id)

    @routes.get(many, response_model=TransformationMap, response_model_exclude_none=True)
    async def list_transformations(
        session: SessionDep, runtime: RuntimeDep, instance: InstanceDep
    ) -> TransformationMap:
        element = runtime.registry.get(instance.element_key)
        return await service.list_transformations(session, place(instance), element)

    @routes.post(
        one,
        openapi_extra=body,
        response_model=schemas.TransformationRead,
        response_model_exclude_none=True,
        responses=CONFLICT,
    )
    async def create_transformation(
        object_name: ObjectNameParam, request: Request, session: SessionDep, instance: InstanceDep
    ) -> schemas.TransformationRead:
        return await _save(
            request, session, place(instance), instance.element_key, object_name, create=True
        )

    @routes.get(one, response_model=schemas.TransformationRead, response_model_exclude_none=True)
    async def get_transformation(
        object_name: ObjectNameParam,
        session: SessionDep,
        runtime: RuntimeDep,
        instance: InstanceDep,
    ) -> schemas.TransformationRead:
        element = runtime.registry.get(instance.element_key)
        return await service.element_view(session, place(instance), element, object_name)

    @routes.put(
        one,
        openapi_extra=body,
        response_model=schemas.TransformationRead,
        response_model_exclude_none=True,
        responses=CONFLICT,
    )
    async def replace_transformation(
        object_name: ObjectNameParam, request: Request, session: SessionDep, instance: InstanceDep
    ) -> schemas.TransformationRead:
        return await _save(
            request, session, place(instance), instance.element_key, object_name, create=False
        )

    @routes.delete(
        one, response_model_exclude_none=True, response_model=schemas.Deleted, responses=CONFLICT
    )
    async def delete_transformation(
        object_name: ObjectNameParam, session: SessionDep, instance: InstanceDep
    ) -> schemas.Deleted:
        await service.delete_transformation(
            session, place(instance), instance.element_key, object_name
        )
        await session.commit()
        return schemas.Deleted()

    return routes


router.include_router(element_transformation_routes(organization_place), prefix="/organizations")
router.include_router(element_transformation_routes(account_place), prefix="/accounts")
router.include_router(
    element_transformation_routes(account_id_place), prefix="/accounts/{account_id:int}"
)
router.include_router(
    instance_transformation_routes(instance_ref), prefix="/instances/{instance_id:int}"
)
router.include_router(instance_transformation_routes(token_instance), prefix="/instances")


@router.get(
    "/elements/{key_or_id}/transformations",
    response_model=TransformationMap,
    response_model_exclude_none=True,
)
async def element_default_transformations(
    key_or_id: str, runtime: RuntimeDep, tenant: TenantDep
) -> TransformationMap:
    """The transformations an element ships (D322), keyed by object name; the caller must be
    a user (``tenant``), as for the rest of the catalog's routes here."""
    return service.element_default_transformations(runtime.registry.get(key_or_id))


@router.put(
    "/transformations",
    openapi_extra=json_body(schemas.TransformationUpsert),
    response_model=schemas.TransformationRead,
    response_model_exclude_none=True,
    responses=CONFLICT,
)
async def upsert_transformation(
    request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> schemas.TransformationRead:
    """Create or replace the transformation the body names (level, objectName, owner)."""
    body = await read_json(request, schemas.TransformationUpsert)
    if body.level == "instance":
        if body.element_instance_id is None:
            raise bad_request("A transformation at instance level needs elementInstanceId")
        instance = await get_owned(session, tenant, body.element_instance_id)
        place, key = Place(tenant, "instance", instance.id), instance.element_key
    else:
        ref = body.element_key if body.element_key is not None else body.element_id
        if ref is None:
            raise bad_request(
                f"A transformation at {body.level} level needs elementKey or elementId"
            )
        place, key = Place(tenant, body.level), _element_key(runtime, str(ref))
    saved = await service.save_transformation(
        session, place, key, body.object_name, body, create=None
    )
    await session.commit()
    return saved


@router.post(
    "/transformations/{object_name}/execute",
    response_model=None,
    responses=ok(dict[str, Any] | list[dict[str, Any]], "The payload, transformed"),
    openapi_extra=json_body(schemas.ExecuteBody),
)
async def execute_transformation(
    object_name: ObjectNameParam,
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
) -> Any:
    """Try the effective transformation out on ``payload``: from the vendor, or towards it
    with ``method`` POST, PUT or PATCH; a failed script is named in ``Elements-Error``."""
    body = await read_json(request, schemas.ExecuteBody)
    if body.instance_id is not None:
        instance = await get_owned(session, tenant, body.instance_id)
        place, key = Place(tenant, "instance", instance.id), instance.element_key
    elif body.element_id is not None:
        place, key = Place(tenant, "account"), _element_key(runtime, str(body.element_id))
    else:
        raise bad_request("Give elementId or instanceId")
    limits = service.script_limits(runtime.settings)
    element = runtime.registry.get(key)
    result, error = await service.execute(session, place, element, object_name, body, limits)
    if error is not None:
        response.headers["Elements-Error"] = error
    return result


# ------------------------------------------------------------------------------ common resources


def _element_ids(runtime: Runtime) -> dict[str, int]:
    return {element.key: element.id for element in runtime.registry}


@router.get(
    "/common-resources",
    response_model=list[schemas.CommonResourceRead],
    response_model_exclude_none=True,
)
async def list_common_resources(
    session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> list[schemas.CommonResourceRead]:
    return await service.common_resources(session, tenant, _element_ids(runtime))


@router.put(
    "/common-resources",
    response_model=schemas.CommonResourceRead,
    response_model_exclude_none=True,
    openapi_extra=json_body(schemas.CommonResourceBody),
    responses=CONFLICT,
)
async def put_common_resource(
    request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> schemas.CommonResourceRead:
    """Create or change a common resource; ``changedFields`` renames fields in its
    transformations."""
    body = await read_json(request, schemas.CommonResourceBody)
    await service.put_common_resource(session, tenant, body)
    await session.commit()
    return await service.common_resource(session, tenant, _element_ids(runtime), body.name)


@router.get(
    "/common-resources/{name}",
    response_model=schemas.CommonResourceRead,
    response_model_exclude_none=True,
)
async def get_common_resource(
    name: ObjectNameParam, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> schemas.CommonResourceRead:
    return await service.common_resource(session, tenant, _element_ids(runtime), name)


@router.patch(
    "/common-resources/{name}",
    response_model=schemas.CommonResourceRead,
    response_model_exclude_none=True,
    openapi_extra=json_body(schemas.RenameCommonResource),
    responses=CONFLICT,
)
async def rename_common_resource(
    name: ObjectNameParam,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
) -> schemas.CommonResourceRead:
    body = await read_json(request, schemas.RenameCommonResource)
    await service.rename_common_resource(session, tenant, name, body.name)
    await session.commit()
    return await service.common_resource(session, tenant, _element_ids(runtime), body.name)


@router.delete(
    "/common-resources/{name}",
    response_model_exclude_none=True,
    response_model=schemas.Deleted,
    responses=CONFLICT,
)
async def delete_common_resource(
    name: ObjectNameParam, session: SessionDep, tenant: TenantDep
) -> schemas.Deleted:
    await service.delete_common_resource(session, tenant, name)
    await session.commit()
    return schemas.Deleted()


@router.get(
    "/common-resources/{name}/usages",
    response_model_exclude_none=True,
    response_model=schemas.UsagesRead,
)
async def common_resource_usages(
    name: ObjectNameParam, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> schemas.UsagesRead:
    """Formulas whose elementRequest steps call the resource (issue 12 item 7)."""
    await service.common_resource(session, tenant, _element_ids(runtime), name)
    usages = await formulas_service.common_resource_usages(session, tenant, name)
    return schemas.UsagesRead(
        formula_usages=[
            schemas.FormulaUsage(
                formula_name=u.formula_name, formula_id=u.formula_id, usage_count=u.count
            )
            for u in usages
        ]
    )
