"""The ``request`` step's way into Hubgate's own platform API, as the formula's owner.

The step runs the API in-process: the same FastAPI application, routes, checks and errors as
over HTTP, called as an ASGI app, with the caller's identity being the formula's owner (who
has no secret Hubgate could present: user secrets are stored only as HMACs, D6). The owner
travels in the ASGI scope and replaces the ``Authorization`` check of ``deps.get_tenant``.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request

from hubgate.db.tenancy import Tenant
from hubgate.deps import get_tenant
from hubgate.runtime import Runtime

OWNER = "hubgate.formula_owner"
API_PREFIX = "/elements/api-v2"
_apps: dict[int, FastAPI] = {}


async def _owner(request: Request) -> Tenant:
    tenant: Tenant = request.scope[OWNER]
    request.state.tenant = tenant
    return tenant


def _app(runtime: Runtime) -> FastAPI:
    app = _apps.get(id(runtime))
    if app is None:
        # Imported here: the application imports the formula routes, which import this.
        from hubgate.app import create_app

        app = create_app(runtime.settings, database_url="")
        # The lifespan is not run: the process's runtime serves the calls.
        app.state.runtime = runtime
        app.dependency_overrides[get_tenant] = _owner
        _apps[id(runtime)] = app
    return app


async def call(
    runtime: Runtime,
    owner: Tenant,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    body: bytes,
) -> tuple[int, dict[str, str], Any]:
    """One platform API call; its status, headers and JSON body (or text)."""
    app = _app(runtime)
    raw_path, _, raw_query = path.partition("?")
    query_string = "&".join(part for part in (raw_query, urlencode(query)) if part)
    headers = [(b"host", b"hubgate.formula")]
    if body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": API_PREFIX + raw_path,
        "raw_path": (API_PREFIX + raw_path).encode(),
        "query_string": query_string.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("hubgate.formula", 80),
        OWNER: owner,
    }
    sent = False
    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", []):
                response_headers[name.decode("latin-1")] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    text = b"".join(chunks).decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, response_headers, parsed
