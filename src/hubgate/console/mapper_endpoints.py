"""The mapper's routes (D323): the "map to a common resource" step of the instance page."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from hubgate.console import mapper
from hubgate.console.endpoints import FormDep, InstanceDep, UserDep
from hubgate.console.pages import redirect, render
from hubgate.deps import RuntimeDep, SessionDep
from hubgate.instances.models import Instance

router = APIRouter(include_in_schema=False)

NOTICES = {
    "saved-instance": "Saved for this instance: its hub calls on the resource now use it.",
    "saved-organization": "Saved for the organization: every instance of this connector in it "
    "uses it, unless an account or instance has its own.",
}


def _page(
    request: Request, user: UserDep, instance: Instance, view: mapper.MapperView, notice: str | None
) -> Response:
    return render(
        request,
        "mapper.html",
        {
            "title": "Map to a common resource",
            "nav": "instances",
            "instance": instance,
            "view": view,
            "notice": notice,
        },
        user=user,
        status=400 if view.errors else 200,
    )


@router.get("/instances/{instance_id:int}/mapping")
async def mapping(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    instance: InstanceDep,
    resource: str | None = None,
    new_resource: str | None = Query(default=None, alias="new"),
    vendor: str | None = None,
    done: str | None = None,
) -> Response:
    chosen = (new_resource or "").strip() or resource
    view = await mapper.view(session, runtime, user.tenant, instance, chosen, vendor)
    return _page(request, user, instance, view, NOTICES.get(done or ""))


@router.post("/instances/{instance_id:int}/mapping")
async def mapping_action(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
    instance: InstanceDep,
) -> Response:
    """``action`` preview: the page again with the mapping tried on a live object; save:
    stored at ``level`` (instance or organization)."""
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    name, vendor = mapper.posted_text(fields, "resource"), mapper.posted_text(fields, "vendor")
    view = await mapper.view(session, runtime, user.tenant, instance, name, vendor)
    if view.resource is None or view.vendor is None:
        view.errors.append("Choose a common resource and a vendor resource first.")
        return _page(request, user, instance, view, None)
    view.rows = mapper.posted_rows(fields)
    view.remove_unmapped = fields.get("remove_unmapped") == "true"
    view.level = "organization" if fields.get("level") == "organization" else "instance"
    body = mapper.transformation_body(view.vendor, view.rows, view.remove_unmapped)
    if fields.get("action") == "save":
        await mapper.save(
            session, user.tenant, instance, view.resource, body, view.rows, view.level
        )
        await session.commit()
        query = urlencode(
            {"resource": view.resource, "vendor": view.vendor, "done": f"saved-{view.level}"}
        )
        return redirect(f"/instances/{instance.id}/mapping?{query}")
    view.preview = await mapper.preview(runtime, instance, body)
    view.rows += [mapper.Row("", fixed=False) for _ in range(mapper.EXTRA_ROWS)]
    return _page(request, user, instance, view, None)
