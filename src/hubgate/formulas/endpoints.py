"""The formula API (D39-D44, background part B): routes only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import RootModel

from hubgate.db.tenancy import Tenant
from hubgate.deps import RuntimeDep, SessionDep, TenantDep, read_json
from hubgate.formulas import schemas, service
from hubgate.formulas.models import Execution, FormulaInstance
from hubgate.formulas.repository import FormulaRepository
from hubgate.kit.errors import HubgateError
from hubgate.openapi_doc import ANY_JSON_BODY, ERROR_TEXT, json_body, ok

router = APIRouter(tags=["formulas"])
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": ERROR_TEXT[409]}}
NEXT_PAGE = "Elements-Next-Page-Token"
# D41: a trigger's input (a manual execution's body) may be this large.
MAX_TRIGGER_BYTES = 5 * 1024 * 1024
Json = Any


class _AnyJson(RootModel[Any]):
    pass


async def _body(request: Request) -> Json:
    return (await read_json(request, _AnyJson)).root


def _listing(items: list[dict[str, Any]], response: Response, next_id: int | None) -> Any:
    if next_id is not None:
        response.headers[NEXT_PAGE] = service.page_token(next_id)
    return items


# ------------------------------------------------------------------------------ templates


@router.post(
    "/formulas",
    response_model=None,
    responses=ok(schemas.FormulaRead),
    openapi_extra=json_body(schemas.FormulaBody),
)
async def create_formula(
    request: Request, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep
) -> dict[str, Any]:
    row = await service.create_formula(session, tenant, await _body(request), runtime.settings)
    await session.commit()
    return service.formula_read(row)


@router.get("/formulas", response_model=None, responses=ok(list[schemas.FormulaRead]))
async def list_formulas(session: SessionDep, tenant: TenantDep) -> list[dict[str, Any]]:
    return [service.formula_read(r) for r in await FormulaRepository(session).formulas(tenant)]


@router.get("/formulas/{formula_id:int}", response_model=None, responses=ok(schemas.FormulaRead))
async def get_formula(formula_id: int, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return service.formula_read(await service.get_formula(session, tenant, formula_id))


@router.put(
    "/formulas/{formula_id:int}",
    response_model=None,
    responses=ok(schemas.FormulaRead),
    openapi_extra=json_body(schemas.FormulaBody),
)
async def replace_formula(
    formula_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await service.get_formula(session, tenant, formula_id)
    await service.replace_formula(session, row, body, runtime.settings)
    await session.commit()
    return service.formula_read(row)


@router.patch(
    "/formulas/{formula_id:int}",
    response_model=None,
    responses=ok(schemas.FormulaRead),
    openapi_extra=json_body(schemas.FormulaBody, required=False),
)
async def patch_formula(
    formula_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await service.get_formula(session, tenant, formula_id)
    await service.patch_formula(session, row, body, runtime.settings)
    await session.commit()
    return service.formula_read(row)


@router.delete(
    "/formulas/{formula_id:int}",
    response_model=None,
    responses={**ok(schemas.Deleted), **CONFLICT},
)
async def delete_formula(formula_id: int, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    await service.delete_formula(session, await service.get_formula(session, tenant, formula_id))
    await session.commit()
    return {}


@router.get(
    "/formulas/{formula_id:int}/export", response_model=None, responses=ok(schemas.FormulaBody)
)
async def export_formula(formula_id: int, session: SessionDep, tenant: TenantDep) -> dict[str, Any]:
    return service.formula_export(await service.get_formula(session, tenant, formula_id))


@router.post(
    "/formulas/{formula_id:int}/triggers",
    response_model=None,
    responses=ok(schemas.TriggerRead),
    openapi_extra=json_body(schemas.TriggerBody),
)
async def add_trigger(
    formula_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await service.get_formula(session, tenant, formula_id)
    # A formula has one trigger (background B.2): a new one takes the old one's place.
    await service.edit_parts(session, row, runtime.settings, triggers=[body])
    await session.commit()
    return dict(row.body["triggers"][-1])


@router.get(
    "/formulas/{formula_id:int}/triggers/{trigger_id:int}",
    response_model=None,
    responses=ok(schemas.TriggerRead),
)
async def get_trigger(
    formula_id: int, trigger_id: int, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = await service.get_formula(session, tenant, formula_id)
    return service.find_trigger(row, trigger_id)


@router.delete(
    "/formulas/{formula_id:int}/triggers/{trigger_id:int}",
    response_model=None,
    responses=ok(schemas.Deleted),
)
async def delete_trigger(
    formula_id: int,
    trigger_id: int,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    row = await service.get_formula(session, tenant, formula_id)
    service.find_trigger(row, trigger_id)
    triggers = [t for t in row.body["triggers"] if t["id"] != trigger_id]
    await service.edit_parts(session, row, runtime.settings, triggers=triggers)
    await session.commit()
    return {}


@router.post(
    "/formulas/{formula_id:int}/steps",
    response_model=None,
    responses=ok(schemas.StepRead),
    openapi_extra=json_body(schemas.StepBody),
)
async def add_step(
    formula_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await service.get_formula(session, tenant, formula_id)
    steps = [*row.body["steps"], body]
    await service.edit_parts(session, row, runtime.settings, steps=steps)
    await session.commit()
    return dict(row.body["steps"][-1])


@router.get(
    "/formulas/{formula_id:int}/steps/{step_id:int}",
    response_model=None,
    responses=ok(schemas.StepRead),
)
async def get_step(
    formula_id: int, step_id: int, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return service.find_step(await service.get_formula(session, tenant, formula_id), step_id)


@router.put(
    "/formulas/{formula_id:int}/steps/{step_id:int}",
    response_model=None,
    responses=ok(schemas.StepRead),
    openapi_extra=json_body(schemas.StepBody),
)
async def replace_step(
    formula_id: int,
    step_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await service.get_formula(session, tenant, formula_id)
    service.find_step(row, step_id)
    if isinstance(body, dict):
        body = {**body, "id": step_id}
    steps = [body if s["id"] == step_id else s for s in row.body["steps"]]
    await service.edit_parts(session, row, runtime.settings, steps=steps)
    await session.commit()
    return service.find_step(row, step_id)


@router.delete(
    "/formulas/{formula_id:int}/steps/{step_id:int}",
    response_model=None,
    responses=ok(schemas.Deleted),
)
async def delete_step(
    formula_id: int,
    step_id: int,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    row = await service.get_formula(session, tenant, formula_id)
    step = service.find_step(row, step_id)
    wire = service.without_step(service.formula_read(row), step["name"])
    await service.replace_formula(session, row, wire, runtime.settings)
    await session.commit()
    return {}


# ------------------------------------------------------------------------------ instances


async def _instance_read(session: SessionDep, tenant: Tenant, row: FormulaInstance) -> Any:
    formula = await service.get_formula(session, tenant, row.formula_id)
    return service.instance_read(row, formula)


@router.post(
    "/formulas/{formula_id:int}/instances",
    response_model=None,
    responses=ok(schemas.InstanceRead),
    openapi_extra=json_body(schemas.InstanceBody),
)
async def create_instance(
    formula_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    formula = await service.get_formula(session, tenant, formula_id)
    row = await service.create_instance(session, tenant, formula, body, runtime.settings)
    await session.commit()
    return service.instance_read(row, formula)


@router.get(
    "/formulas/{formula_id:int}/instances",
    response_model=None,
    responses=ok(list[schemas.InstanceRead]),
)
async def list_formula_instances(
    formula_id: int, session: SessionDep, tenant: TenantDep
) -> list[dict[str, Any]]:
    formula = await service.get_formula(session, tenant, formula_id)
    rows = await FormulaRepository(session).instances(tenant, formula_id=formula_id)
    return [service.instance_read(r, formula) for r in rows]


@router.get("/formulas/instances", response_model=None, responses=ok(list[schemas.InstanceRead]))
async def list_instances(
    session: SessionDep,
    tenant: TenantDep,
    elementInstanceId: int | None = None,  # noqa: N803 - the wire name
    searchText: str | None = None,  # noqa: N803 - the wire name
    includeInactive: bool = True,  # noqa: N803 - the wire name
) -> list[dict[str, Any]]:
    repo = FormulaRepository(session)
    rows = await repo.instances(
        tenant,
        element_instance_id=elementInstanceId,
        search=searchText,
        include_inactive=includeInactive,
    )
    formulas = {f.id: f for f in await repo.formulas(tenant)}
    return [service.instance_read(r, formulas[r.formula_id]) for r in rows]


@router.get(
    "/formulas/{formula_id:int}/instances/{instance_id:int}",
    response_model=None,
    responses=ok(schemas.InstanceRead),
)
async def get_instance(
    formula_id: int, instance_id: int, session: SessionDep, tenant: TenantDep
) -> Any:
    row = await service.get_instance(session, tenant, instance_id, formula_id)
    return await _instance_read(session, tenant, row)


async def _write_instance(
    formula_id: int,
    instance_id: int,
    request: Request,
    session: SessionDep,
    tenant: Tenant,
    runtime: RuntimeDep,
    *,
    merge: bool,
) -> Any:
    body = await _body(request)
    formula = await service.get_formula(session, tenant, formula_id)
    row = await service.get_instance(session, tenant, instance_id, formula_id)
    if merge and isinstance(body, dict):
        body = {**service.instance_read(row, formula), **body}
    await service.replace_instance(session, tenant, formula, row, body, runtime.settings)
    await session.commit()
    return service.instance_read(row, formula)


@router.put(
    "/formulas/{formula_id:int}/instances/{instance_id:int}",
    response_model=None,
    responses=ok(schemas.InstanceRead),
    openapi_extra=json_body(schemas.InstanceBody),
)
async def replace_instance(
    formula_id: int,
    instance_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> Any:
    return await _write_instance(
        formula_id, instance_id, request, session, tenant, runtime, merge=False
    )


@router.patch(
    "/formulas/{formula_id:int}/instances/{instance_id:int}",
    response_model=None,
    responses=ok(schemas.InstanceRead),
    openapi_extra=json_body(schemas.InstanceBody, required=False),
)
async def patch_instance(
    formula_id: int,
    instance_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> Any:
    return await _write_instance(
        formula_id, instance_id, request, session, tenant, runtime, merge=True
    )


@router.delete(
    "/formulas/{formula_id:int}/instances/{instance_id:int}",
    response_model=None,
    responses=ok(schemas.Deleted),
)
async def delete_instance(
    formula_id: int, instance_id: int, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = await service.get_instance(session, tenant, instance_id, formula_id)
    await FormulaRepository(session).delete(row)
    await session.commit()
    return {}


async def _set_active(
    formula_id: int, instance_id: int, session: SessionDep, tenant: Tenant, active: bool
) -> Any:
    row = await service.get_instance(session, tenant, instance_id, formula_id)
    service.set_active(row, active)
    await session.commit()
    return await _instance_read(session, tenant, row)


@router.put(
    "/formulas/{formula_id:int}/instances/{instance_id:int}/active",
    response_model=None,
    responses=ok(schemas.InstanceRead),
)
async def activate_instance(
    formula_id: int, instance_id: int, session: SessionDep, tenant: TenantDep
) -> Any:
    return await _set_active(formula_id, instance_id, session, tenant, True)


@router.delete(
    "/formulas/{formula_id:int}/instances/{instance_id:int}/active",
    response_model=None,
    responses=ok(schemas.InstanceRead),
)
async def deactivate_instance(
    formula_id: int, instance_id: int, session: SessionDep, tenant: TenantDep
) -> Any:
    return await _set_active(formula_id, instance_id, session, tenant, False)


# ------------------------------------------------------------------------------ executions


async def _run_manually(
    instance_id: int,
    formula_id: int | None,
    request: Request,
    session: SessionDep,
    tenant: Tenant,
    runtime: RuntimeDep,
) -> list[dict[str, Any]]:
    raw = await request.body()
    if len(raw) > MAX_TRIGGER_BYTES:
        raise HubgateError(413, "A trigger's input is at most 5 MB (D41)")
    args = await _body(request)
    row = await service.get_instance(session, tenant, instance_id, formula_id)
    execution = await service.run_manually(
        session, runtime.jobs.app, runtime.settings, tenant, row, args
    )
    await session.commit()
    # Open Connectors answers an array whose first element is the new execution (B.7).
    return [service.execution_read(execution)]


_RAN = ok(list[schemas.ExecutionRead])


@router.post(
    "/formulas/{formula_id:int}/instances/{instance_id:int}/executions",
    response_model=None,
    responses=_RAN,
    openapi_extra=ANY_JSON_BODY,
)
async def run_formula_instance(
    formula_id: int,
    instance_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> list[dict[str, Any]]:
    return await _run_manually(instance_id, formula_id, request, session, tenant, runtime)


@router.post(
    "/formulas/instances/{instance_id:int}/executions",
    response_model=None,
    responses=_RAN,
    openapi_extra=ANY_JSON_BODY,
)
async def run_instance(
    instance_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> list[dict[str, Any]]:
    return await _run_manually(instance_id, None, request, session, tenant, runtime)


@dataclass(frozen=True)
class Paging:
    size: int
    before_id: int | None


def paging(
    pageSize: str | None = None,  # noqa: N803 - the wire name
    nextPage: str | None = None,  # noqa: N803 - the wire name
) -> Paging:
    """The execution lists' paging (D344): ``pageSize``, and ``nextPage`` from the last page's
    ``Elements-Next-Page-Token``."""
    return Paging(service.page_size(pageSize), service.parse_page_token(nextPage))


PagingDep = Annotated[Paging, Depends(paging)]


async def _executions(
    session: SessionDep,
    tenant: Tenant,
    response: Response,
    page: Paging,
    *,
    instance_id: int | None,
    formula_id: int | None,
    event_id: str | None = None,
    object_id: str | None = None,
    errors_only: bool = False,
) -> Any:
    if event_id is not None and object_id is not None:
        raise HubgateError(400, "Filter by eventId or by objectId, not both")
    if instance_id is not None:
        await service.get_instance(session, tenant, instance_id, formula_id)
    elif formula_id is not None:
        await service.get_formula(session, tenant, formula_id)
    size = page.size
    rows = await FormulaRepository(session).executions(
        tenant,
        instance_id=instance_id,
        formula_id=formula_id,
        before_id=page.before_id,
        limit=size + 1,
        event_id=event_id,
        object_id=object_id,
        errors_only=errors_only,
    )
    more = len(rows) > size
    rows = rows[:size]
    reads = [service.execution_read(r) for r in rows]
    if errors_only:
        for read, row in zip(reads, rows, strict=True):
            read["stepExecutions"] = await service.steps_read(
                session, row, include_values=True, failed_only=True
            )
    return _listing(reads, response, rows[-1].id if more and rows else None)


@router.get("/formulas/instances/{instance_id:int}/executions", response_model=None, responses=_RAN)
async def list_executions(
    instance_id: int,
    response: Response,
    session: SessionDep,
    tenant: TenantDep,
    page: PagingDep,
    eventId: str | None = None,  # noqa: N803 - the wire name
    objectId: str | None = None,  # noqa: N803 - the wire name
) -> Any:
    return await _executions(
        session,
        tenant,
        response,
        page,
        instance_id=instance_id,
        formula_id=None,
        event_id=eventId,
        object_id=objectId,
    )


@router.get(
    "/formulas/{formula_id:int}/instances/{instance_id:int}/executions",
    response_model=None,
    responses=_RAN,
)
async def list_formula_executions(
    formula_id: int,
    instance_id: int,
    response: Response,
    session: SessionDep,
    tenant: TenantDep,
    page: PagingDep,
    eventId: str | None = None,  # noqa: N803 - the wire name
    objectId: str | None = None,  # noqa: N803 - the wire name
) -> Any:
    return await _executions(
        session,
        tenant,
        response,
        page,
        instance_id=instance_id,
        formula_id=formula_id,
        event_id=eventId,
        object_id=objectId,
    )


@router.get(
    "/formulas/instances/{instance_id:int}/executions/errors", response_model=None, responses=_RAN
)
async def instance_errors(
    instance_id: int,
    response: Response,
    session: SessionDep,
    tenant: TenantDep,
    page: PagingDep,
) -> Any:
    return await _executions(
        session,
        tenant,
        response,
        page,
        instance_id=instance_id,
        formula_id=None,
        errors_only=True,
    )


@router.get(
    "/formulas/{formula_id:int}/instances/executions/errors", response_model=None, responses=_RAN
)
async def formula_errors(
    formula_id: int,
    response: Response,
    session: SessionDep,
    tenant: TenantDep,
    page: PagingDep,
) -> Any:
    return await _executions(
        session,
        tenant,
        response,
        page,
        instance_id=None,
        formula_id=formula_id,
        errors_only=True,
    )


async def _execution(session: SessionDep, tenant: Tenant, execution_id: int) -> Execution:
    row = await FormulaRepository(session).execution(tenant, execution_id)
    if row is None:
        raise HubgateError(404, f"No formula execution found with id {execution_id}")
    return row


@router.get(
    "/formulas/instances/executions/{execution_id:int}",
    response_model=None,
    responses=ok(schemas.ExecutionRead),
)
async def get_execution(
    execution_id: int, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    row = await _execution(session, tenant, execution_id)
    read = service.execution_read(row)
    read["stepExecutions"] = await service.steps_read(session, row, include_values=False)
    return read


@router.patch(
    "/formulas/instances/executions/{execution_id:int}",
    response_model=None,
    responses=ok(schemas.ExecutionRead),
    openapi_extra=json_body(schemas.ExecutionPatch),
)
async def cancel_execution(
    execution_id: int, request: Request, session: SessionDep, tenant: TenantDep
) -> dict[str, Any]:
    body = await _body(request)
    row = await _execution(session, tenant, execution_id)
    await service.cancel(session, row, body.get("status") if isinstance(body, dict) else None)
    await session.commit()
    await session.refresh(row)
    return service.execution_read(row)


@router.get(
    "/formulas/instances/executions/{execution_id:int}/steps",
    response_model=None,
    responses=ok(list[schemas.StepExecutionRead]),
)
async def execution_steps(
    execution_id: int,
    session: SessionDep,
    tenant: TenantDep,
    includeValues: bool = False,  # noqa: N803 - the wire name
) -> list[dict[str, Any]]:
    row = await _execution(session, tenant, execution_id)
    return await service.steps_read(session, row, include_values=includeValues)


@router.get(
    "/formulas/instances/executions/{execution_id:int}/errors",
    response_model=None,
    responses=ok(list[schemas.StepExecutionRead]),
)
async def execution_errors(
    execution_id: int, session: SessionDep, tenant: TenantDep
) -> list[dict[str, Any]]:
    row = await _execution(session, tenant, execution_id)
    return await service.steps_read(session, row, include_values=True, failed_only=True)


@router.put(
    "/formulas/instances/executions/{execution_id:int}/retries",
    response_model=None,
    responses=ok(schemas.ExecutionRead),
)
async def rerun_execution(
    execution_id: int, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep
) -> dict[str, Any]:
    row = await _execution(session, tenant, execution_id)
    new = await service.rerun(session, runtime.jobs.app, runtime.settings, row)
    await session.commit()
    return service.execution_read(new)


@router.post(
    "/formulas/instances/executions/{execution_id:int}/replay",
    response_model=None,
    responses=ok(schemas.ExecutionRead),
    openapi_extra=json_body(schemas.ReplayBody),
)
async def replay_execution(
    execution_id: int,
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _body(request)
    row = await _execution(session, tenant, execution_id)
    from_step = body.get("fromStep") if isinstance(body, dict) else None
    new = await service.replay(session, runtime.jobs.app, runtime.settings, row, from_step)
    await session.commit()
    return service.execution_read(new)
