"""Judging a request the simulator received by Twilio's own OpenAPI description.

Checks the path against the spec's templates (and each path parameter's schema: SID patterns),
the method, every query parameter's name and value (typed as the spec types it, formats
included) and the form body (names, types, repeated keys only for arrays, required fields).
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema

from sims.twilio_sim import SimRequest

Json = dict[str, Any]


def _coerce(value: str, schema: Json) -> Any:
    """A form or query string as the JSON value the spec's schema describes."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


class TwilioContract:
    def __init__(self, spec_path: Path) -> None:
        self.spec: Json = json.loads(spec_path.read_text(encoding="utf-8"))

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str, Json]]:
        found = []
        for template, item in self.spec["paths"].items():
            parts = re.split(r"(\{[^}]+\})", template)
            regex = "".join(
                f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
            )
            found.append((re.compile(regex), template, item))
        # Literal paths first: Accounts/{Sid}.json must not swallow Accounts.json.
        found.sort(key=lambda t: t[1].count("{"))
        return found

    def _resolve(self, schema: Json) -> Json:
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def _check(self, where: str, value: Any, schema: Json, problems: list[str]) -> None:
        validator = jsonschema.Draft7Validator(
            self._resolve(schema), format_checker=jsonschema.FormatChecker()
        )
        problems.extend(f"{where}: {e.message}" for e in validator.iter_errors(value))

    def _find(self, path: str) -> tuple[re.Match[str], str, Json] | None:
        for regex, template, item in self._templates:
            matched = regex.fullmatch(path)
            if matched is not None:
                return matched, template, item
        return None

    def problems(self, request: SimRequest) -> list[str]:
        """Everything about ``request`` that Twilio's description does not allow."""
        found = self._find(request.path)
        if found is None:
            return [f"{request.method} {request.path}: no such path in Twilio's API"]
        matched, template, item = found
        operation = item.get(request.method.lower())
        if operation is None:
            return [f"{request.method} {template}: method not in Twilio's API"]
        problems: list[str] = []
        parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
        by_place: dict[str, dict[str, Json]] = {"path": {}, "query": {}}
        for parameter in parameters:
            parameter = self._resolve(parameter)
            by_place.setdefault(parameter["in"], {})[parameter["name"]] = parameter
        for name, value in matched.groupdict().items():
            schema = by_place["path"][name].get("schema", {})
            self._check(f"path {name}", _coerce(value, schema), schema, problems)
        for name, raw in request.query.items():
            declared = by_place["query"].get(name)
            if declared is None:
                problems.append(f"query {name}: not a parameter of {template}")
                continue
            schema = self._resolve(declared.get("schema", {}))
            values = raw if isinstance(raw, list) else [raw]
            if len(values) > 1 and schema.get("type") != "array":
                problems.append(f"query {name}: repeated but not an array")
            for value in values:
                item_schema = schema.get("items", {}) if schema.get("type") == "array" else schema
                self._check(f"query {name}", _coerce(value, item_schema), item_schema, problems)
        problems.extend(self._form_problems(operation, request, template))
        return problems

    def _form_problems(self, operation: Json, request: SimRequest, template: str) -> list[str]:
        content = operation.get("requestBody", {}).get("content", {})
        form_schema = content.get("application/x-www-form-urlencoded", {}).get("schema")
        if form_schema is None:
            return (
                [f"form {sorted(request.form)}: {template} takes no body"] if request.form else []
            )
        schema = self._resolve(form_schema)
        properties: Json = schema.get("properties", {})
        problems: list[str] = []
        body: Json = {}
        for name, raw in request.form.items():
            declared = properties.get(name)
            if declared is None:
                problems.append(f"form {name}: not a field of {template}")
                continue
            declared = self._resolve(declared)
            if declared.get("type") == "array":
                values = raw if isinstance(raw, list) else [raw]
                body[name] = [_coerce(v, declared.get("items", {})) for v in values]
            elif isinstance(raw, list):
                problems.append(f"form {name}: repeated but not an array")
            else:
                body[name] = _coerce(raw, declared)
        for name in schema.get("required", []):
            if name not in request.form:
                problems.append(f"form {name}: required by {template}")
        for name, value in body.items():
            self._check(f"form {name}", value, properties[name], problems)
        return problems
