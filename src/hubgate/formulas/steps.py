"""What each step type does (background part B.4), given the execution's context.

A step run is a function of the context and the step's template entry that answers an
``Outcome``; it never touches the database, so the engine (``tasks.py``) can commit its result
and the new context together, before the next step starts (D43, D450). Steps that call out send
``Idempotency-Key: <executionId>.<stepName>.<n>`` (``n``: the step run's position in the
execution), so a step repeated after a crash is the same request to the vendor.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from hubgate.db.tenancy import Tenant
from hubgate.formulas import platform, template
from hubgate.hub import service as hub
from hubgate.hub.model import HubCall, ResolvedInstance
from hubgate.instances.service import ensure_enabled
from hubgate.kit import sandbox
from hubgate.kit.egress import EgressDenied, EgressError, EgressTimeout
from hubgate.kit.errors import HubgateError
from hubgate.runtime import Runtime

Json = Any
SCRIPT_PARAMS = ("trigger", "steps", "info", "config")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")
_PATH = re.compile(r"\.?([A-Za-z0-9_$-]+)|\[\s*(\d+)\s*\]|\[\s*['\"]([^'\"]*)['\"]\s*\]")


@dataclass
class Outcome:
    """A step's result. ``ok`` picks ``onSuccess`` or ``onFailure``; the other fields ask the
    engine for more than going on: run this step again later (``again_at``), wait for a
    sub-formula (``spawn``), end the execution as ``retry`` and start it again (``retry_at``)."""

    ok: bool
    value: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    next_steps: list[str] | None = None
    again_at: datetime | None = None
    spawn: dict[str, Any] | None = None
    retry_at: datetime | None = None


@dataclass
class StepRun:
    """Everything one step run sees."""

    runtime: Runtime
    execution_id: int
    position: int
    step: Mapping[str, Any]
    context: dict[str, Any]  # {"trigger", "steps", "info", "config"}
    state: dict[str, Any]  # the engine's own part: loops, tries, children
    now: datetime
    attempt: int
    # The tenant's connector instance by id, ready for the hub; None when it is not there.
    load_instance: Callable[[int], Awaitable[ResolvedInstance | None]]
    owner: Tenant

    @property
    def name(self) -> str:
        return str(self.step["name"])

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}.{self.name}.{self.position}"

    def prop(self, key: str, default: Json = None) -> Json:
        value = self.step["properties"].get(key, default)
        return resolve(value, self.context)


# -- references --------------------------------------------------------------------------------


def lookup(path: str, context: Mapping[str, Any]) -> Json:
    """The value at ``steps.a.b[0]`` / ``config.k`` / ``trigger.x``; a bare key is config."""
    path = path.strip()
    parts: list[str | int] = []
    for match in _PATH.finditer(path):
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
    if not parts:
        return None
    if parts[0] not in ("steps", "config", "trigger", "info"):
        parts.insert(0, "config")
    current: Json = context
    for part in parts:
        if isinstance(current, str) and current[:1] in "[{":
            # Values stored as JSON text (request and response bodies) are looked into.
            try:
                current = json.loads(current)
            except ValueError:
                return None
        if isinstance(part, int) and isinstance(current, list) and part < len(current):
            current = current[part]
        elif isinstance(current, dict) and str(part) in current:
            current = current[str(part)]
        else:
            return None
    return current


def _text(value: Json) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def resolve(value: Json, context: Mapping[str, Any]) -> Json:
    """A property with its ``${...}`` filled; a property that is one reference is its value."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return lookup(whole.group(1), context)
        return template.REFERENCE.sub(lambda m: _text(lookup(m.group(1), context)), value)
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    return value


def _as_object(value: Json) -> Json:
    if isinstance(value, str) and value.strip()[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- scripts -----------------------------------------------------------------------------------


async def _script(run: StepRun) -> sandbox.Outcome:
    inputs = {name: run.context.get(name) for name in SCRIPT_PARAMS}
    settings = run.runtime.settings
    limits = sandbox.Limits(
        seconds=settings.formula_script_seconds,
        memory_bytes=settings.formula_script_memory_mib * sandbox.MIB,
    )
    return await sandbox.run_async(
        str(run.step["properties"]["body"]), SCRIPT_PARAMS, inputs, limits
    )


def _captured(outcome: sandbox.Outcome) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if outcome.console:
        extra["console"] = list(outcome.console)
    if outcome.notifications:
        extra["notify"] = [dict(n) for n in outcome.notifications]
    return extra


async def run_script(run: StepRun) -> Outcome:
    outcome = await _script(run)
    if isinstance(outcome, sandbox.ScriptFailure):
        message = outcome.reason()
        return Outcome(False, {"error": message, **_captured(outcome)}, message)
    value = outcome.value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        message = "done() must be given an object in a script step"
        return Outcome(False, {"error": message, **_captured(outcome)}, message)
    return Outcome(True, {**value, **_captured(outcome)})


async def run_filter(run: StepRun) -> Outcome:
    outcome = await _script(run)
    if isinstance(outcome, sandbox.ScriptFailure):
        message = outcome.reason()
        return Outcome(False, {"error": message, **_captured(outcome)}, message)
    passed = outcome.value is True or outcome.value == "true"
    # A false filter takes onFailure, yet the execution is not a failure (B.4).
    steps = list(run.step["onSuccess"] if passed else run.step["onFailure"])
    value = {"continue": "true" if passed else "false", **_captured(outcome)}
    return Outcome(True, value, next_steps=steps)


# -- requests ----------------------------------------------------------------------------------


@dataclass
class _Answer:
    code: int
    headers: dict[str, str]
    body: Json


def _query(value: Json) -> list[tuple[str, str]]:
    value = _as_object(value)
    if not isinstance(value, dict):
        return []
    return [(str(k), _text(v)) for k, v in value.items() if v is not None]


def _fill_path(api: str, path: Json) -> str:
    values = _as_object(path)
    if not isinstance(values, dict):
        return api
    return re.sub(
        r"\{([^}/]+)\}",
        lambda m: quote(_text(values.get(m.group(1), m.group(0))), safe=""),
        api,
    )


def _body_bytes(body: Json) -> bytes:
    body = _as_object(body)
    if body in (None, ""):
        return b""
    return (body if isinstance(body, str) else json.dumps(body)).encode()


async def _element_request(run: StepRun) -> tuple[dict[str, Any], _Answer]:
    raw_id = run.prop("elementInstanceId")
    try:
        instance_id = int(str(raw_id))
    except ValueError:
        raise HubgateError(400, f"elementInstanceId {raw_id!r} is not an instance id") from None
    resolved = await run.load_instance(instance_id)
    if resolved is None:
        raise HubgateError(404, f"Instance {instance_id} not found")
    method = str(run.prop("method")).upper()
    api = _fill_path(str(run.prop("api")), run.prop("path"))
    query = _query(run.prop("query"))
    body = _body_bytes(run.prop("body"))
    call = hub.parse_hub_path(method, api)
    call = HubCall(
        method,
        call.segments,
        call.query + tuple(query),
        body,
        "application/json" if body else None,
        run.idempotency_key,
    )
    sent = {
        "method": method,
        "path": api,
        "uri": api,
        "query": dict(query),
        "headers": {"Idempotency-Key": run.idempotency_key},
        "body": body.decode() if body else None,
    }
    ensure_enabled(resolved.id, disabled=resolved.disabled)
    try:
        result = await hub.handle(run.runtime, resolved, call)
    except HubgateError as error:
        return sent, _Answer(
            error.status, dict(error.headers), {"message": error.message, **error.extra}
        )
    return sent, _Answer(result.status, dict(result.headers), result.body)


async def _http_request(run: StepRun) -> tuple[dict[str, Any], _Answer]:
    method = str(run.prop("method")).upper()
    url = str(run.prop("url"))
    query = _query(run.prop("query"))
    headers = {str(k): _text(v) for k, v in (_as_object(run.prop("headers")) or {}).items()}
    headers.setdefault("Idempotency-Key", run.idempotency_key)
    body = _body_bytes(run.prop("body"))
    if body:
        headers.setdefault("Content-Type", "application/json")
    sent = {
        "method": method,
        "url": url,
        "query": dict(query),
        "headers": headers,
        "body": body.decode() if body else None,
    }
    try:
        response = await run.runtime.egress.request(
            method, url, params=query or None, headers=headers, data=body or None
        )
    except EgressTimeout as error:
        return sent, _Answer(504, {}, {"message": str(error)})
    except EgressDenied as error:
        return sent, _Answer(403, {}, {"message": f"{error} (see HUBGATE_EGRESS_ALLOW)"})
    except EgressError as error:
        return sent, _Answer(502, {}, {"message": str(error)})
    text = response.body.decode("utf-8", "replace")
    try:
        parsed: Json = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return sent, _Answer(response.status, dict(response.headers), parsed)


async def _platform_request(run: StepRun) -> tuple[dict[str, Any], _Answer]:
    method = str(run.prop("method")).upper()
    api = _fill_path(str(run.prop("api")), run.prop("path"))
    query = _query(run.prop("query"))
    body = _body_bytes(run.prop("body"))
    sent = {
        "method": method,
        "path": api,
        "uri": api,
        "query": dict(query),
        "headers": {},
        "body": body.decode() if body else None,
    }
    status, headers, parsed = await platform.call(run.runtime, run.owner, method, api, query, body)
    return sent, _Answer(status, headers, parsed)


def _in(code: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= code <= high for low, high in ranges)


async def run_request(run: StepRun) -> Outcome:
    kind = run.step["type"]
    try:
        if kind == "elementRequest":
            sent, answer = await _element_request(run)
        elif kind == "httpRequest":
            sent, answer = await _http_request(run)
        else:
            sent, answer = await _platform_request(run)
    except HubgateError as error:
        return Outcome(False, {"error": error.message}, error.message)
    acceptable = run.step["properties"].get("acceptableStatusCodes")
    ranges = (
        template.status_codes(acceptable, "acceptableStatusCodes") if acceptable else [(200, 299)]
    )
    value = {
        "request": {k: _text(v) for k, v in sent.items()},
        "response": {
            "code": str(answer.code),
            "headers": json.dumps(answer.headers),
            "body": _text(answer.body),
        },
    }
    if _in(answer.code, ranges):
        return Outcome(True, value)
    props = run.step["properties"]
    retry_codes = props.get("retryStatusCodes")
    tries = int(run.state.get("tries", 0))
    wants_retry = str(props.get("retry", "true" if retry_codes else "false")) == "true"
    if (
        wants_retry
        and tries < int(props.get("retryAttempts", "0") or 0)
        and (not retry_codes or _in(answer.code, template.status_codes(retry_codes, "x")))
    ):
        delay = timedelta(milliseconds=int(props.get("retryDelay", "1000") or 0))
        return Outcome(False, value, again_at=run.now + delay)
    message = f"{kind} answered {answer.code}"
    return Outcome(False, {**value, "error": message}, message)


# -- flow --------------------------------------------------------------------------------------


async def run_loop(run: StepRun) -> Outcome:
    loops: dict[str, Any] = run.state.setdefault("loops", {})
    current = loops.get(run.name)
    if current is None:
        items = _as_object(run.prop("list"))
        if not isinstance(items, list):
            message = f"loop {run.name!r}: the list is not a list"
            return Outcome(False, {"error": message}, message)
        current = {"list": items, "index": -1}
    index = int(current["index"]) + 1
    if index >= len(current["list"]):
        # Exhausted: the loop ends along onFailure, as Open Connectors' loops do (B.4).
        loops.pop(run.name, None)
        return Outcome(True, {"index": str(index)}, next_steps=list(run.step["onFailure"]))
    loops[run.name] = {"list": current["list"], "index": index}
    return Outcome(True, {"entry": current["list"][index], "index": index})


async def run_formula(run: StepRun) -> Outcome:
    children: dict[str, Any] = run.state.setdefault("children", {})
    child = children.get(str(run.position))
    if child is None:
        raw = run.prop("formulaId")
        try:
            formula_id = int(str(raw))
        except ValueError:
            message = f"formulaId {raw!r} is not a formula id"
            return Outcome(False, {"error": message}, message)
        configs = _as_object(run.prop("subFormulaConfigs")) or {}
        return Outcome(
            True,
            spawn={
                "formulaId": formula_id,
                "args": _as_object(run.prop("args")),
                "config": {
                    **run.context["config"],
                    **(configs if isinstance(configs, dict) else {}),
                },
            },
        )
    # Run again once the sub-formula ended: its last step's values are this step's (B.4).
    value = dict(child.get("value") or {})
    if child.get("status") != "success":
        message = child.get("error") or f"sub-formula execution {child.get('id')} failed"
        return Outcome(False, {**value, "error": message}, message)
    return Outcome(True, value)


async def run_retry(run: StepRun) -> Outcome:
    limit = min(int(run.step["properties"]["retryAttempts"]), template.MAX_EXECUTION_RETRIES)
    attempt = run.attempt + 1
    if attempt > limit:
        message = f"retryFormulaExecution: the {limit} retries are spent"
        return Outcome(False, {"attempt": str(run.attempt), "error": message}, message)
    at = run.now + timedelta(minutes=round(math.exp(attempt)))
    text = "Formula instance execution scheduled for retry at approximately " + at.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return Outcome(True, {"attempt": str(attempt), "message": text}, retry_at=at)


RUNNERS: dict[str, Callable[[StepRun], Awaitable[Outcome]]] = {
    "script": run_script,
    "filter": run_filter,
    "elementRequest": run_request,
    "httpRequest": run_request,
    "request": run_request,
    "loop": run_loop,
    "formula": run_formula,
    "retryFormulaExecution": run_retry,
}


async def run_step(run: StepRun) -> Outcome:
    return await RUNNERS[run.step["type"]](run)
