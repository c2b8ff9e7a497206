"""The web console (D33): routes only; what pages show and do lives in the service."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from hubgate.console import forms, service
from hubgate.console.pages import (
    NotSignedInError,
    csrf_refused,
    not_found,
    redirect,
    render,
    safe_next,
)
from hubgate.console.sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    ConsoleUser,
    new_nonce,
    resolve,
    sign_in,
    sign_out,
    signin_token,
    token_matches,
)
from hubgate.deps import RuntimeDep, SessionDep
from hubgate.elements.registry import Element
from hubgate.instances import service as instances
from hubgate.instances.models import Instance
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime

router = APIRouter(include_in_schema=False)

NOTICES = {
    "created": "Authenticated. Your instance is ready: its token is below, with three next steps.",
    "updated": "Saved.",
    "enabled": "Enabled: the instance's token works again.",
    "disabled": "Disabled: calls with this instance's token are refused until you enable it.",
    "trace-on": "Trace logging is on: every hub call of this instance is kept below.",
    "trace-off": "Trace logging is off. The calls already kept stay below.",
}


async def current_user(request: Request, session: SessionDep, runtime: RuntimeDep) -> ConsoleUser:
    user = await resolve(session, runtime.keyring, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise NotSignedInError
    request.state.console_user = user
    return user


UserDep = Annotated[ConsoleUser, Depends(current_user)]


async def checked_form(request: Request, user: UserDep) -> FormData:
    """The posted form, once its CSRF token proves it came from this person's own page."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not token_matches(user.csrf_token, given if isinstance(given, str) else None):
        raise csrf_refused()
    return form


FormDep = Annotated[FormData, Depends(checked_form)]


def secure_cookies(request: Request, runtime: Runtime) -> bool:
    return request.url.scheme == "https" or runtime.settings.base_url.startswith("https://")


async def owned_instance(instance_id: int, session: SessionDep, user: UserDep) -> Instance:
    instance = await service.owned(session, user.tenant, instance_id)
    if instance is None:
        # Someone else's instance and a missing one look the same (D4).
        raise not_found(f"There is no instance {instance_id} in your account.")
    return instance


InstanceDep = Annotated[Instance, Depends(owned_instance)]


def known_element(runtime: Runtime, key: str) -> Element:
    found = service.element(runtime, key)
    if found is None:
        raise not_found(f"There is no element {key!r} in the catalog.")
    return found


# -- signing in and out -------------------------------------------------------------------


@router.get("/")
async def home(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    user = await resolve(session, runtime.keyring, request.cookies.get(SESSION_COOKIE))
    return redirect("/instances" if user else "/signin")


def _signin_page(
    request: Request, runtime: Runtime, *, next_path: str, error: str | None, status: int
) -> Response:
    nonce = new_nonce()
    response = render(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "next": next_path,
            "error": error,
            "signin_token": signin_token(runtime.keyring, nonce),
        },
        status=status,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, runtime),
    )
    return response


@router.get("/signin")
async def signin_form(
    request: Request, runtime: RuntimeDep, next: Annotated[str, Query(max_length=2000)] = "/"
) -> Response:
    return _signin_page(request, runtime, next_path=safe_next(next), error=None, status=200)


@router.post("/signin")
async def signin(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    form = await request.form()
    nonce = request.cookies.get(SIGNIN_COOKIE)
    given = form.get(CSRF_FIELD)
    if nonce is None or not token_matches(
        signin_token(runtime.keyring, nonce), given if isinstance(given, str) else None
    ):
        raise csrf_refused()
    next_path = safe_next(str(form.get("next") or "/"))
    # The API's limit on failed authentications per address covers the console's too (D172).
    runtime.limits.check_client(request)
    try:
        session_id = await sign_in(
            session,
            runtime,
            user_secret=str(form.get("user_secret") or ""),
            organization_secret=str(form.get("organization_secret") or ""),
        )
    except HubgateError as exc:
        if exc.status != 401:
            raise
        runtime.limits.note_auth_failure(request)
        return _signin_page(
            request,
            runtime,
            next_path=next_path,
            error="Those secrets do not match a user of that organization. "
            "Check both and try again.",
            status=401,
        )
    await session.commit()
    response = redirect(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=runtime.settings.console_session_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request, runtime),
        path="/",
    )
    response.delete_cookie(SIGNIN_COOKIE)
    return response


@router.post("/signout")
async def signout(
    request: Request, session: SessionDep, runtime: RuntimeDep, user: UserDep, form: FormDep
) -> Response:
    await sign_out(session, user)
    await session.commit()
    response = redirect("/signin")
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request, runtime),
    )
    return response


# -- catalog and authentication -----------------------------------------------------------


@router.get("/catalog")
async def catalog(
    request: Request,
    runtime: RuntimeDep,
    user: UserDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    return render(
        request,
        "catalog.html",
        {"title": "Catalog", "nav": "catalog", "q": q, "entries": service.catalog(runtime, q)},
        user=user,
    )


def _authenticate_page(
    request: Request,
    user: ConsoleUser,
    found: Element,
    state: forms.FormState,
    *,
    status: int = 200,
) -> Response:
    manifest = found.manifest
    return render(
        request,
        "authenticate.html",
        {
            "title": f"Authenticate {manifest.name}",
            "nav": "catalog",
            "element": service.catalog_entry(manifest),
            **forms.context(manifest, state, editing=False),
        },
        user=user,
        status=status,
    )


@router.get("/catalog/{key}")
async def authenticate_form(
    key: str, request: Request, runtime: RuntimeDep, user: UserDep
) -> Response:
    found = known_element(runtime, key)
    values = service.oauth_form_values(runtime, found)
    return _authenticate_page(request, user, found, forms.FormState(values=values))


@router.post("/catalog/{key}")
async def authenticate(
    key: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
) -> Response:
    found = known_element(runtime, key)
    submitted = forms.parse(found.manifest, form)
    if found.hooks.oauth is not None:
        return _consent(request, runtime, user, found, submitted)
    outcome = await service.authenticate(session, runtime, user.tenant, found, submitted)
    if outcome.instance is None:
        state = forms.resubmitted(found.manifest, submitted, outcome.errors)
        return _authenticate_page(request, user, found, state, status=400)
    await session.commit()
    return redirect(f"/instances/{outcome.instance.id}?done=created")


OAUTH_COOKIE = "hubgate_oauth"


def _oauth_cookie_path(key: str) -> str:
    return f"/catalog/{key}/callback"


def _consent(
    request: Request,
    runtime: Runtime,
    user: ConsoleUser,
    found: Element,
    submitted: forms.Submitted,
) -> Response:
    """Send the person to the vendor's consent page, the form kept for the way back.

    A page that moves on by itself rather than a redirect: the console's CSP allows forms to
    post only to itself, which browsers also apply to where a form's answer redirects.
    """
    nonce = new_nonce()
    try:
        url = service.consent_url(runtime, found, submitted, nonce)
    except HubgateError as exc:
        state = forms.resubmitted(found.manifest, submitted, forms.errors_from(found.manifest, exc))
        return _authenticate_page(request, user, found, state, status=400)
    pending = service.PendingOAuth(nonce, submitted)
    response = render(
        request,
        "consent.html",
        {
            "title": "Continue to " + found.manifest.vendor_name,
            "nav": "catalog",
            "url": url,
            "vendor_name": found.manifest.vendor_name,
        },
        user=user,
    )
    response.set_cookie(
        OAUTH_COOKIE,
        service.seal_pending(runtime, user.id_hash, found.key, pending),
        max_age=service.OAUTH_PENDING_SECONDS,
        httponly=True,
        # Lax: sent when the vendor's page sends the browser back (a top-level GET).
        samesite="lax",
        secure=secure_cookies(request, runtime),
        path=_oauth_cookie_path(found.key),
    )
    return response


@router.get("/catalog/{key}/callback")
async def oauth_callback(
    key: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The vendor's redirect back (D56): the code is exchanged and the instance saved."""
    found = known_element(runtime, key)
    sealed = request.cookies.get(OAUTH_COOKIE)
    pending = service.open_pending(runtime, user.id_hash, found.key, sealed)
    name = found.manifest.vendor_name
    if pending is None or not token_matches(pending.state, state):
        problem = forms.FormErrors(
            summary=f"This return from {name} does not match an authentication started here"
            " in the last ten minutes. Start again."
        )
        values = service.oauth_form_values(runtime, found)
        response = _authenticate_page(
            request, user, found, forms.FormState(values=values, errors=problem), status=400
        )
    elif error is not None or not code:
        problem = forms.FormErrors(summary=f"{name} did not grant access ({error or 'no code'}).")
        shown = forms.resubmitted(found.manifest, pending.submitted, problem)
        response = _authenticate_page(request, user, found, shown, status=400)
    else:
        outcome = await service.authenticate(
            session, runtime, user.tenant, found, pending.submitted, code=code
        )
        if outcome.instance is None:
            shown = forms.resubmitted(found.manifest, pending.submitted, outcome.errors)
            response = _authenticate_page(request, user, found, shown, status=400)
        else:
            await session.commit()
            response = redirect(f"/instances/{outcome.instance.id}?done=created")
    response.delete_cookie(
        OAUTH_COOKIE,
        path=_oauth_cookie_path(found.key),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request, runtime),
    )
    return response


# -- instances ----------------------------------------------------------------------------


@router.get("/instances")
async def instance_list(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    element: Annotated[str, Query(max_length=100)] = "",
    tag: Annotated[str, Query(max_length=100)] = "",
    deleted: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    listing = await service.instance_list(
        session, runtime, user.tenant, element_key=element, tag=tag
    )
    return render(
        request,
        "instances.html",
        {
            "title": "Instances",
            "nav": "instances",
            "listing": listing,
            "element": element,
            "tag": tag,
            "deleted": deleted,
        },
        user=user,
    )


async def _instance_page(
    request: Request,
    session: SessionDep,
    runtime: Runtime,
    user: ConsoleUser,
    instance: Instance,
    *,
    with_token: bool,
    notice: str | None,
) -> Response:
    view = await service.instance_view(
        session, runtime, user.tenant, instance, with_token=with_token
    )
    return render(
        request,
        "instance.html",
        {"title": instance.name, "nav": "instances", "notice": notice, **view},
        user=user,
    )


@router.get("/instances/{instance_id:int}")
async def instance_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    instance: InstanceDep,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _instance_page(
        request, session, runtime, user, instance, with_token=False, notice=NOTICES.get(done)
    )


@router.post("/instances/{instance_id:int}/token")
async def reveal_token(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
    instance: InstanceDep,
) -> Response:
    return await _instance_page(
        request, session, runtime, user, instance, with_token=True, notice=None
    )


def _edit_page(
    request: Request,
    user: ConsoleUser,
    runtime: Runtime,
    instance: Instance,
    state: forms.FormState,
    *,
    status: int = 200,
) -> Response:
    manifest = runtime.registry.get(instance.element_key).manifest
    return render(
        request,
        "edit.html",
        {
            "title": f"Edit {instance.name}",
            "nav": "instances",
            "instance_id": instance.id,
            "instance_name": instance.name,
            "element": service.catalog_entry(manifest),
            **forms.context(manifest, state, editing=True),
        },
        user=user,
        status=status,
    )


@router.get("/instances/{instance_id:int}/edit")
async def edit_form(
    request: Request, runtime: RuntimeDep, user: UserDep, instance: InstanceDep
) -> Response:
    state = forms.FormState(
        values=service.current_values(instance), name=instance.name, tags=", ".join(instance.tags)
    )
    return _edit_page(request, user, runtime, instance, state)


@router.post("/instances/{instance_id:int}/edit")
async def edit(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: UserDep,
    form: FormDep,
    instance: InstanceDep,
) -> Response:
    manifest = runtime.registry.get(instance.element_key).manifest
    submitted = forms.parse(manifest, form)
    outcome = await service.change(session, runtime, instance, submitted)
    if outcome.instance is None:
        state = forms.resubmitted(manifest, submitted, outcome.errors)
        return _edit_page(request, user, runtime, instance, state, status=400)
    await session.commit()
    return redirect(f"/instances/{instance.id}?done=updated")


@router.post("/instances/{instance_id:int}/enabled")
async def set_enabled(
    session: SessionDep, user: UserDep, form: FormDep, instance: InstanceDep
) -> Response:
    enabled = form.get("enabled") == "true"
    await instances.set_enabled(session, instance, enabled)
    await session.commit()
    return redirect(f"/instances/{instance.id}?done={'enabled' if enabled else 'disabled'}")


@router.post("/instances/{instance_id:int}/trace-logging")
async def set_trace_logging(
    session: SessionDep, runtime: RuntimeDep, user: UserDep, form: FormDep, instance: InstanceDep
) -> Response:
    enabled = form.get("enabled") == "true"
    await service.set_trace_logging(session, runtime, instance, enabled)
    await session.commit()
    done = "trace-on" if enabled else "trace-off"
    return redirect(f"/instances/{instance.id}?done={done}#trace-logs")


@router.get("/instances/{instance_id:int}/delete")
async def delete_form(request: Request, user: UserDep, instance: InstanceDep) -> Response:
    return render(
        request,
        "delete.html",
        {"title": f"Delete {instance.name}", "nav": "instances", "instance": instance},
        user=user,
    )


@router.post("/instances/{instance_id:int}/delete")
async def delete(
    session: SessionDep, user: UserDep, form: FormDep, instance: InstanceDep
) -> Response:
    name = instance.name
    await instances.delete(session, instance)
    await session.commit()
    return redirect("/instances?" + urlencode({"deleted": name}))


# -- the three next steps -----------------------------------------------------------------


@router.get("/instances/{instance_id:int}/api-docs")
async def api_docs(
    request: Request, runtime: RuntimeDep, user: UserDep, instance: InstanceDep
) -> Response:
    return render(
        request,
        "api_docs.html",
        {
            "title": f"API docs · {instance.name}",
            "nav": "instances",
            "instance": instance,
            "spec_url": f"/instances/{instance.id}/api-docs/openapi.json",
            "api_spec_url": f"/elements/api-v2/instances/{instance.id}/docs",
            "api_base": "/elements/api-v2",
            "token": service.token_of(runtime, instance),
        },
        user=user,
    )


@router.get("/instances/{instance_id:int}/api-docs/openapi.json")
async def api_docs_document(runtime: RuntimeDep, user: UserDep, instance: InstanceDep) -> Response:
    return JSONResponse(
        service.openapi_document(runtime, instance), headers={"Cache-Control": "no-store"}
    )
