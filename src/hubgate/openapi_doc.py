"""Hubgate's OpenAPI document says what the API really does: its bodies, errors and auth.

The document is what clients and our own fuzzing (tests/fuzz) read, so it must not lie. Routes
read their JSON bodies by hand (``deps.read_json``: 415 and D9 400s instead of FastAPI's 422),
which FastAPI cannot see, so a route names its body with :func:`json_body`; success bodies are
named with :func:`ok`. What every route shares is added here once, from the route's own
dependencies, so routes that other packages add get it too:

- the D9 error body for the statuses the route can answer (never FastAPI's unused 422);
- ``Elements-Request-Id`` on every response (D9);
- the ``Authorization`` header of D5 as a security scheme, on routes that read credentials;
- optional query parameters as the values they can be: a query string has no null (a
  parameter left out is simply absent), so FastAPI's ``anyOf [X, null]`` is documented as X.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hubgate.middleware import MAX_HEADER_BYTES, MAX_TARGET_BYTES

ERROR_SCHEMA = "Error"
SECURITY_SCHEME = "OpenConnectors"
REQUEST_ID_PATTERN = "^[0-9a-f]{24}$"

ERROR_TEXT = {
    400: "Bad input: malformed JSON, invalid fields, bad query parameters (D10)",
    401: "Missing, malformed or wrong credentials (D8)",
    403: "The instance is disabled (D8)",
    404: "No such object in the caller's tenant (D4)",
    405: "The resource does not take this method",
    409: "Conflict with the object's current state",
    413: "Request body larger than HUBGATE_MAX_BODY_BYTES",
    414: f"Request path and query longer than {MAX_TARGET_BYTES} bytes (D205)",
    415: "Request body is not application/json",
    429: "Rate limited; retry after Retry-After seconds",
    431: f"Request headers larger than {MAX_HEADER_BYTES} bytes in all (D205)",
    502: "The vendor could not be reached or failed (D10)",
    503: "The database is unavailable; retry after Retry-After seconds",
    504: "The vendor did not answer in time (D10)",
}
# The body of a route that takes any JSON (hub calls pass it on to the vendor).
ANY_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": False, "content": {"application/json": {"schema": {}}}}
}
# What a route can answer because of what it depends on, whatever its own code does.
_ALWAYS = (400, 404, 413, 414, 431)
_WITH_CREDENTIALS = (401, 403, 429)
_WITH_DATABASE = (503,)
_WITH_BODY = (415,)


class ErrorBody(BaseModel):
    """Every error Hubgate answers (D9); vendor errors add the provider fields."""

    model_config = ConfigDict(extra="allow")

    request_id: str = Field(alias="requestId", pattern=REQUEST_ID_PATTERN)
    message: str
    provider_message: str | None = Field(default=None, alias="providerMessage")
    provider_code: int | str | None = Field(default=None, alias="providerCode")
    provider_status: int | None = Field(default=None, alias="providerStatus")


def ok(
    model: Any, description: str = "Success", *, vendor: bool = False
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose 200 body has the shape of ``model``.

    Use with ``response_model=None``: the route keeps returning plain JSON, and FastAPI does
    not merge the model into the schema it infers from the return annotation. ``vendor``: the
    route calls the vendor, so it can also answer 502 and 504 (D10).
    """
    responses: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": description}}
    if vendor:
        for status in (502, 504):
            responses[status] = {"description": ERROR_TEXT[status]}
    return responses


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra=`` naming the JSON body a route reads with ``deps.read_json``."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


def inline_schema(model: Any) -> dict[str, Any]:
    """The JSON schema of ``model`` with its ``$defs`` inlined.

    Pydantic's ``#/$defs/X`` references are relative to the schema's own root, which inside an
    OpenAPI document is the document itself, where they do not resolve.
    """
    schema = TypeAdapter(model).json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**resolve(copy.deepcopy(definitions[ref.removeprefix("#/$defs/")])), **rest}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _statuses(route: RouteContext, operation: dict[str, Any]) -> list[int]:
    from hubgate.deps import get_credentials, get_session

    calls = set(_calls(route.dependant))
    statuses = set(_ALWAYS)
    if get_credentials in calls:
        statuses.update(_WITH_CREDENTIALS)
    if get_session in calls:
        statuses.update(_WITH_DATABASE)
    if "requestBody" in operation:
        statuses.update(_WITH_BODY)
    return sorted(statuses)


def _request_id_header() -> dict[str, Any]:
    return {
        "description": "The request id, the same as an error body's requestId (D9)",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    }


def _document(app: FastAPI, schema: dict[str, Any], prefix: str) -> None:
    components = schema.setdefault("components", {})
    component_schemas = components.setdefault("schemas", {})
    component_schemas[ERROR_SCHEMA] = inline_schema(ErrorBody)
    component_schemas.pop("HTTPValidationError", None)
    component_schemas.pop("ValidationError", None)
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Comma-separated `User <secret>`, `Organization <secret>`, "
        "`Element <token>` pairs (D5)",
    }
    error_content = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
    }
    # Routers are included lazily; the contexts are the routes as the app serves them.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = route.path_format
        if path is None or not path.startswith(prefix):
            continue
        path_item = schema["paths"].get(path, {})
        for method in route.methods or ():
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _statuses(route, operation):
                responses.setdefault(
                    str(status), {"description": ERROR_TEXT[status], "content": error_content}
                )
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = error_content
                headers = response.setdefault("headers", {})
                headers.setdefault("Elements-Request-Id", _request_id_header())
                if status in ("429", "503"):
                    headers.setdefault(
                        "Retry-After",
                        {
                            "description": "Seconds to wait before trying again",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                    )
            if "401" in responses:
                operation.setdefault("security", [{SECURITY_SCHEME: []}])
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    parameter["schema"] = _without_null(parameter["schema"])


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, {type: null}]`` as X, with the title and description kept."""
    choices = schema.get("anyOf")
    if not isinstance(choices, list):
        return schema
    values = [choice for choice in choices if choice != {"type": "null"}]
    if len(values) != 1 or len(values) == len(choices):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**values[0], **rest}


def install(app: FastAPI, *, prefix: str) -> None:
    """Replace ``app.openapi`` with one that documents errors, headers and auth (see above)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _document(app, schema, prefix)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
