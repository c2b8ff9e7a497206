"""The console's formula routes (D370-D372): the instance page's "use in a formula" step, the
set-up of a shipped template, and the formula instance page with its executions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from hubgate.console import formulas
from hubgate.console.endpoints import FormDep, InstanceDep, UserDep
from hubgate.console.pages import not_found, redirect, render
from hubgate.console.sessions import ConsoleUser
from hubgate.deps import RuntimeDep, SessionDep
from hubgate.formulas.catalog import ShippedTemplate, shipped_template, shipped_templates
from hubgate.instances.models import Instance
from hubgate.kit.errors import HubgateError

router = APIRouter(include_in_schema=False)

NOTICES = {
    "created": "Formula instance created. It runs on its trigger from now on.",
    "run": "Started: the execution below runs in the background; this page follows it.",
    "replayed": "Replaying: the steps before the chosen one are reused, not run again.",
}


def _template(key: str) -> ShippedTemplate:
    found = shipped_template(key)
    if found is None:
        raise not_found(f"There is no formula template {key!r} in the catalog.")
    return found


@router.get("/instances/{instance_id:int}/formulas")
async def catalog(
    request: Request, session: SessionDep, user: UserDep, instance: InstanceDep
) -> Response:
    return render(
        request,
        "formulas.html",
        {
            "title": "Use in a formula",
            "nav": "instances",
            "instance": instance,
            "templates": shipped_templates(),
            "bound": await formulas.bound_to(session, user.tenant, instance),
        },
        user=user,
    )


async def _setup_page(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    instance: Instance,
    shipped: ShippedTemplate,
    *,
    given: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    fields = await formulas.setup_fields(session, user.tenant, instance, shipped, given)
    return render(
        request,
        "formula_setup.html",
        {
            "title": shipped.name,
            "nav": "instances",
            "instance": instance,
            "template": shipped,
            "fields": fields,
            "name": (given or {}).get("name", shipped.name),
            "error": error,
        },
        user=user,
        status=400 if error else 200,
    )


@router.get("/instances/{instance_id:int}/formulas/{key}")
async def setup_form(
    key: str, request: Request, session: SessionDep, user: UserDep, instance: InstanceDep
) -> Response:
    return await _setup_page(request, session, user, instance, _template(key))


@router.post("/instances/{instance_id:int}/formulas/{key}")
async def setup(
    key: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
    instance: InstanceDep,
) -> Response:
    shipped = _template(key)
    given = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        # A savepoint: a refused configuration leaves no template behind either.
        async with session.begin_nested():
            created = await formulas.create_instance(
                session, runtime, user.tenant, shipped, given.get("name", ""), given
            )
    except HubgateError as exc:
        if exc.status != 400:
            raise
        return await _setup_page(
            request, session, user, instance, shipped, given=given, error=exc.message
        )
    await session.commit()
    return redirect(f"/formula-instances/{created.id}?done=created")


async def _instance_page(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    instance_id: int,
    execution_id: int | None,
    *,
    notice: str | None = None,
    run_error: str | None = None,
    run_input: str = "{}",
) -> Response:
    page = await formulas.instance_page(session, user.tenant, instance_id, execution_id)
    return render(
        request,
        "formula_instance.html",
        {
            "title": page.instance.name,
            "nav": "instances",
            "page": page,
            "notice": notice,
            "run_error": run_error,
            "run_input": run_input,
        },
        user=user,
        status=400 if run_error else 200,
    )


@router.get("/formula-instances/{instance_id:int}")
async def instance_page(
    instance_id: int,
    request: Request,
    session: SessionDep,
    user: UserDep,
    execution: Annotated[int | None, Query()] = None,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _instance_page(
        request, session, user, instance_id, execution, notice=NOTICES.get(done)
    )


@router.post("/formula-instances/{instance_id:int}/run")
async def run_now(
    instance_id: int,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
) -> Response:
    text = str(form.get("input") or "")
    try:
        async with session.begin_nested():
            execution = await formulas.run_now(session, runtime, user.tenant, instance_id, text)
    except HubgateError as exc:
        if exc.status != 400:
            raise
        return await _instance_page(
            request, session, user, instance_id, None, run_error=exc.message, run_input=text
        )
    await session.commit()
    return redirect(f"/formula-instances/{instance_id}?execution={execution.id}&done=run")


@router.post("/formula-instances/{instance_id:int}/executions/{execution_id:int}/replay")
async def replay(
    instance_id: int,
    execution_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
) -> Response:
    step = str(form.get("step") or "")
    replayed = await formulas.replay(session, runtime, user.tenant, instance_id, execution_id, step)
    await session.commit()
    return redirect(f"/formula-instances/{instance_id}?execution={replayed.id}&done=replayed")
