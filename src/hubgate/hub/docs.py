"""OpenAPI 3 of an element's hub resources, generated from its manifest (D18, issue 3 item 6)."""

from __future__ import annotations

from typing import Any

from hubgate.elements.manifest import Operation, Resource
from hubgate.elements.registry import Element

Json = dict[str, Any]
API_PREFIX = "/elements/api-v2"
_ARRAY_FIELDS = frozenset({"MediaUrl", "StatusCallbackEvent", "PersistentAction"})

# An empty page or pageSize means the default (paging.page_request), as a template that
# leaves them blank expects.
_WHOLE_OR_EMPTY: Json = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}]
}
_EMPTY_IS_DEFAULT = "Empty means the default"
_LIST_PARAMETERS: list[Json] = [
    {
        "name": "where",
        "in": "query",
        "description": "CEQL filter, e.g. to='+15558675310' AND DateSent>='2026-01-01'",
        "schema": {"type": "string"},
    },
    {
        "name": "orderBy",
        "in": "query",
        "description": "CEQL order, e.g. date_sent desc",
        "schema": {"type": "string"},
    },
    {
        "name": "fields",
        "in": "query",
        "description": "Comma-separated fields to return",
        "schema": {"type": "string"},
    },
    {"name": "page", "in": "query", "schema": _WHOLE_OR_EMPTY, "description": _EMPTY_IS_DEFAULT},
    {
        "name": "pageSize",
        "in": "query",
        "schema": _WHOLE_OR_EMPTY,
        "description": _EMPTY_IS_DEFAULT,
    },
    {
        "name": "nextPage",
        "in": "query",
        "description": "The Elements-Next-Page-Token of the previous page",
        "schema": {"type": "string"},
    },
]

_ERROR: Json = {
    "type": "object",
    "properties": {
        "requestId": {"type": "string"},
        "message": {"type": "string"},
        "providerMessage": {"type": "string"},
        "providerCode": {},
        "providerStatus": {"type": "integer"},
    },
    "required": ["requestId", "message"],
}


def _operation(element: Element, resource: Resource, method: str, operation: Operation) -> Json:
    parameters: list[Json] = [
        {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for name in resource.segments
        if name.startswith("{")
    ]
    for parameter in operation.parameters:
        schema: Json = {"type": "string"}
        if parameter.default is not None:
            schema["default"] = parameter.default
        if parameter.enum is not None:
            # Empty is the same as absent: the default applies (service._vendor_target).
            schema["enum"] = [*parameter.enum, ""]
        parameters.append(
            {
                "name": parameter.name,
                "in": "query",
                "description": parameter.description,
                "schema": schema,
            }
        )
    item: Json = {"type": "object", "additionalProperties": True}
    if operation.list_key is not None:
        parameters.extend(_LIST_PARAMETERS)
        success: Json = {"type": "array", "items": item}
    else:
        success = item
    response_headers: Json = {
        "elements-element-instance-id": {"schema": {"type": "string"}},
        "Elements-Request-Id": {"schema": {"type": "string"}},
    }
    if operation.list_key is not None:
        response_headers["Elements-Returned-Count"] = {"schema": {"type": "integer"}}
        response_headers["Elements-Next-Page-Token"] = {"schema": {"type": "string"}}
    error = {
        "description": "Error (D9)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    spec: Json = {
        "operationId": _operation_id(method, resource),
        "summary": operation.summary or f"{method} {resource.path}",
        "tags": [resource.segments[0]],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "headers": response_headers,
                "content": {"application/json": {"schema": success}},
            },
            # The vendor's own 4xx pass through (D10), besides Hubgate's 400/401/403/404/
            # 413/415/429.
            "4XX": error,
            "502": error,
            "503": error,
            "504": error,
        },
    }
    if operation.body != "none":
        # A form field is text (or repeated text); a JSON field is whatever the vendor takes.
        properties: Json = {
            name: {}
            if operation.body == "json"
            else {"type": "array", "items": {"type": "string"}}
            if name in _ARRAY_FIELDS
            else {"type": "string"}
            for name in operation.fields
        }
        body: Json = {"type": "object", "properties": properties, "additionalProperties": True}
        if operation.required_fields:
            body["required"] = list(operation.required_fields)
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return spec


def _operation_id(method: str, resource: Resource) -> str:
    words = [s.strip("{}") for s in resource.segments]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def element_openapi(element: Element, base_url: str, *, instance_id: int | None = None) -> Json:
    """The element's hub resources; for an instance, the server is this Hubgate's API."""
    manifest = element.manifest
    paths: Json = {}
    for resource in manifest.resources:
        path = f"/hubs/{manifest.hub}/{resource.path}"
        paths[path] = {
            method.lower(): _operation(element, resource, method, operation)
            for method, operation in resource.operations.items()
        }
    title = f"{manifest.name} ({manifest.hub} hub)"
    if instance_id is not None:
        title += f", instance {instance_id}"
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "2", "description": manifest.description},
        "servers": [{"url": f"{base_url}{API_PREFIX}", "description": "This Hubgate"}],
        "security": [{"Element": []}],
        "tags": [
            {"name": r.segments[0], "description": r.description}
            for r in manifest.resources
            if "/" not in r.path
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "Element": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Element <instance token>",
                }
            },
            "schemas": {"Error": _ERROR},
        },
    }
