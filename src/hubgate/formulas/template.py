"""A formula template's JSON (background part B.2): checked and normalized before it is stored.

Every fault is a 400 that names it (issue 12 item 1). The stored body keeps what a client sent
in Open Connectors' shape, step property values as strings (D39), with ids added to triggers,
steps and configuration entries (ids count within the template).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from hubgate.formulas import schedule
from hubgate.kit.errors import bad_request

Json = Any
STEP_TYPES = frozenset(
    {
        "script",
        "filter",
        "elementRequest",
        "httpRequest",
        "request",
        "loop",
        "formula",
        "retryFormulaExecution",
    }
)
# D40: what Open Connectors had and Hubgate does not offer, and what to use instead.
REFUSED_STEPS = {
    "notification": "the v1 notification step is not offered: call notify.email(to, subject, "
    "body) in a script step",
    "elementRequestStream": "elementRequestStream is not offered: use an elementRequest step",
    "amqpRequest": "amqpRequest is not offered: use an httpRequest step",
}
TRIGGER_TYPES = frozenset({"event", "elementRequest", "scheduled", "manual"})
CONFIG_TYPES = frozenset({"elementInstance", "value"})
REQUEST_STEPS = frozenset({"elementRequest", "httpRequest", "request"})
MAX_EXECUTION_RETRIES = 7  # D41
_REQUIRED = {
    "script": ("body",),
    "filter": ("body",),
    "elementRequest": ("elementInstanceId", "method", "api"),
    "httpRequest": ("method", "url"),
    "request": ("method", "api"),
    "loop": ("list",),
    "formula": ("formulaId",),
    "retryFormulaExecution": ("retryAttempts",),
}
_TRIGGER_REQUIRED = {
    "event": ("elementInstanceId",),
    "elementRequest": ("elementInstanceId", "method", "api"),
    "scheduled": ("cron",),
    "manual": (),
}
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_CODE = frozenset({"body"})
REFERENCE = re.compile(r"\$\{([^}]*)\}")
_STEP_REF = re.compile(r"steps(?:\.([A-Za-z0-9_$-]+)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
_STATUS_RANGE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")
_TAG = re.compile(r"<[^>]*>")


def _obj(value: Json, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{where} must be a JSON object")
    return value


def _list(value: Json, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{where} must be a JSON array")
    return value


def _names(value: Json, where: str) -> list[str]:
    names = _list(value, where)
    if not all(isinstance(n, str) for n in names):
        raise bad_request(f"{where} must be an array of step names")
    return names


MAX_NAME = 200


def storable(value: Json, where: str) -> None:
    """PostgreSQL keeps no NUL character in text or JSON: such input is a 400, not a 500."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise bad_request(f"{where} may not hold NUL characters (\\u0000)")
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def checked_name(name: Json, what: str) -> str:
    if not isinstance(name, str) or not sanitize(name):
        raise bad_request(f"A {what} needs a name")
    clean = sanitize(name)
    if len(clean) > MAX_NAME:
        raise bad_request(f"A {what}'s name is at most {MAX_NAME} characters")
    return clean


def sanitize(name: str) -> str:
    """Formula names are stored without markup, as Open Connectors does."""
    return html.unescape(_TAG.sub("", name)).strip()


def as_string(value: Json) -> Json:
    """Property values are stored as strings (D39); objects and arrays stay JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return value


def status_codes(text: str, prop: str) -> list[tuple[int, int]]:
    """``"200,201"`` or ``"200-205,208"`` as inclusive ranges; a 400 naming ``prop`` if bad."""
    ranges: list[tuple[int, int]] = []
    for part in str(text).split(","):
        match = _STATUS_RANGE.match(part)
        if match is None:
            raise bad_request(f"Invalid {prop} {text!r}: use codes and ranges like 200-205,208")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (100 <= low <= high <= 599):
            raise bad_request(f"Invalid {prop} {text!r}: codes run from 100 to 599, low to high")
        ranges.append((low, high))
    return ranges


def _whole(value: Json, prop: str, step: str, low: int, high: int | None = None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < low or (high is not None and number > high):
        upper = f" and {high}" if high is not None else ""
        raise bad_request(
            f"Invalid {prop} {value!r} in step {step!r}: a whole number between {low}{upper}"
        )
    return number


def _check_step_properties(step: str, kind: str, props: dict[str, Any]) -> None:
    for required in _REQUIRED[kind]:
        if props.get(required) in (None, ""):
            raise bad_request(f"Step {step!r} ({kind}) needs the property {required!r}")
    if kind in ("script", "filter"):
        if props.get("scriptEngine", "v2") == "v1":
            raise bad_request(
                f"Step {step!r}: v1 scripts are not offered; write a v2 script that calls done()"
            )
        if not isinstance(props["body"], str) or "done(" not in props["body"]:
            raise bad_request(f"Step {step!r}: a {kind} script must call done()")
    if kind in REQUEST_STEPS:
        method = str(props["method"]).upper()
        if method not in _METHODS:
            raise bad_request(f"Invalid method {props['method']!r} in step {step!r}")
        if "retryAttempts" in props:
            _whole(props["retryAttempts"], "retryAttempts", step, 0, 10)
        if "retryDelay" in props:
            _whole(props["retryDelay"], "retryDelay", step, 0, 3_600_000)
        for prop in ("retryStatusCodes", "acceptableStatusCodes"):
            if props.get(prop) not in (None, ""):
                status_codes(props[prop], prop)
    if kind == "request" and str(props["api"]).startswith("/hubs/"):
        raise bad_request(
            f"Step {step!r}: a request step calls the platform API; use an "
            "elementRequest step for /hubs/ calls"
        )
    if kind == "retryFormulaExecution":
        _whole(props["retryAttempts"], "retryAttempts", step, 1, MAX_EXECUTION_RETRIES)


def references(value: Json, skip_code: bool = True) -> Iterator[str]:
    """The text inside each ``${...}`` of a property value, nested values included."""
    if isinstance(value, str):
        yield from REFERENCE.findall(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (skip_code and key in _CODE):
                yield from references(item, skip_code=False)
    elif isinstance(value, list):
        for item in value:
            yield from references(item, skip_code=False)


def _check_reference(text: str, where: str, config: set[str], steps: set[str]) -> None:
    root = re.split(r"[.\[]", text.strip(), maxsplit=1)[0]
    if root == "config":
        key = text.strip()[len("config.") :].split(".", 1)[0]
        if key not in config:
            raise bad_request(f"{where} refers to ${{{text}}}: no configuration key {key!r}")
    elif root == "steps":
        match = _STEP_REF.match(text.strip())
        name = (match.group(1) or match.group(2)) if match else None
        if name not in steps:
            raise bad_request(f"{where} refers to ${{{text}}}: no step {name!r}")
    elif root in ("trigger", "info"):
        return
    elif root not in config:
        # The v1 short form ${key} is kept for configuration keys only.
        raise bad_request(f"{where} refers to ${{{text}}}, which names nothing")


def check(
    raw: Json,
    *,
    min_interval: timedelta,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body to store for ``raw``: every rule of item 1 checked, ids assigned."""
    body = _obj(raw, "The formula")
    storable(body, "The formula")
    name = checked_name(body.get("name"), "formula")
    engine = body.get("engine", "v3")
    if engine != "v3" and engine is not None:
        raise bad_request(f"Engine {engine!r} is not offered: Hubgate runs formulas on v3 (D40)")
    if body.get("singleThreaded") in (True, "true"):
        raise bad_request(
            "singleThreaded is a v1 feature and is not offered: formulas run on v3 (D40)"
        )
    if body.get("api") or body.get("uri"):
        raise bad_request("Formulas as a resource (api, method, uri) are not offered")
    next_id = int((previous or {}).get("nextId", 1))

    def new_id(item: dict[str, Any]) -> int:
        nonlocal next_id
        given = item.get("id")
        if isinstance(given, int) and not isinstance(given, bool) and 0 < given < next_id:
            return given
        next_id += 1
        return next_id - 1

    configuration: list[dict[str, Any]] = []
    keys: set[str] = set()
    for entry in _list(body.get("configuration"), "configuration"):
        item = _obj(entry, "A configuration entry")
        key = item.get("key")
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", key):
            raise bad_request(f"Invalid configuration key {key!r}")
        if key in keys:
            raise bad_request(f"Duplicate configuration key {key!r}")
        keys.add(key)
        kind = item.get("type", "value")
        if kind not in CONFIG_TYPES:
            raise bad_request(
                f"Configuration {key!r} has type {kind!r}: use elementInstance or value"
            )
        configuration.append(
            {
                "id": new_id(item),
                "key": key,
                "name": str(item.get("name") or key),
                "type": kind,
                "description": str(item.get("description") or ""),
                "required": item.get("required", True) not in (False, "false"),
            }
        )
    # A key renamed in place (same id) is renamed where steps and triggers use it too.
    renames = renamed_keys(previous or {}, {"configuration": configuration})
    steps: list[dict[str, Any]] = []
    step_names: set[str] = set()
    for entry in _list(body.get("steps"), "steps"):
        item = _obj(entry, "A step")
        step = item.get("name")
        if not isinstance(step, str) or not step or step == "trigger" or len(step) > MAX_NAME:
            raise bad_request(f"Invalid step name {step!r}")
        if step in step_names:
            raise bad_request(f"Duplicate step name {step!r}")
        step_names.add(step)
        kind = item.get("type")
        if kind in REFUSED_STEPS:
            raise bad_request(f"Step {step!r}: {REFUSED_STEPS[kind]}")
        if kind not in STEP_TYPES:
            raise bad_request(f"Step {step!r} has an unknown type {kind!r}")
        props = rename_references(
            {k: as_string(v) for k, v in _obj(item.get("properties") or {}, step).items()},
            renames,
        )
        _check_step_properties(step, kind, props)
        steps.append(
            {
                "id": new_id(item),
                "name": step,
                "type": kind,
                "properties": props,
                "onSuccess": _names(item.get("onSuccess"), f"onSuccess of {step}"),
                "onFailure": _names(item.get("onFailure"), f"onFailure of {step}"),
            }
        )
    triggers: list[dict[str, Any]] = []
    for entry in _list(body.get("triggers"), "triggers"):
        item = _obj(entry, "A trigger")
        kind = item.get("type")
        if kind not in TRIGGER_TYPES:
            raise bad_request(
                f"Trigger type {kind!r} is not offered: use event, elementRequest, scheduled "
                "or manual"
            )
        props = rename_references(
            {k: as_string(v) for k, v in _obj(item.get("properties") or {}, "trigger").items()},
            renames,
        )
        for required in _TRIGGER_REQUIRED[kind]:
            if props.get(required) in (None, ""):
                raise bad_request(f"A {kind} trigger needs the property {required!r}")
        if kind == "scheduled" and not REFERENCE.search(str(props["cron"])):
            schedule.check(str(props["cron"]), min_interval)
        triggers.append(
            {
                "id": new_id(item),
                "type": kind,
                "name": str(item.get("name") or "trigger"),
                "async": item.get("async", True) not in (False, "false"),
                "properties": props,
                "onSuccess": _names(item.get("onSuccess"), "onSuccess of the trigger"),
                "onFailure": _names(item.get("onFailure"), "onFailure of the trigger"),
            }
        )
    if len(triggers) > 1:
        raise bad_request("A formula has one trigger")
    for owner, item in [("the trigger", t) for t in triggers] + [
        (f"step {s['name']!r}", s) for s in steps
    ]:
        for field in ("onSuccess", "onFailure"):
            for target in item[field]:
                if target not in step_names:
                    raise bad_request(f"{field} of {owner} names no step: {target!r}")
        # Script bodies are JavaScript, where ${...} is a template literal, not a reference.
        is_code = item.get("type") in ("script", "filter")
        for text in references(item["properties"], skip_code=is_code):
            _check_reference(text, owner.capitalize(), keys, step_names)
    return {
        "name": name,
        "description": str(body.get("description") or ""),
        "active": body.get("active", True) not in (False, "false"),
        "debugLoggingEnabled": body.get("debugLoggingEnabled", True) not in (False, "false"),
        "configuration": configuration,
        "triggers": triggers,
        "steps": steps,
        "nextId": next_id,
    }


def renamed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, str]:
    """Configuration keys whose entry (same id) now has another key: old key -> new key."""
    before = {c["id"]: c["key"] for c in old.get("configuration", [])}
    return {
        before[c["id"]]: c["key"]
        for c in new.get("configuration", [])
        if c["id"] in before and before[c["id"]] != c["key"]
    }


def rename_references(value: Json, renames: Mapping[str, str]) -> Json:
    """``value`` with ``${config.old}``, ``${old}`` and a script's ``config.old`` renamed."""
    if not renames:
        return value
    if isinstance(value, dict):
        return {k: rename_references(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_references(v, renames) for v in value]
    if not isinstance(value, str):
        return value
    for old, new in renames.items():
        value = re.sub(rf"(?<![\w$.])config\.{re.escape(old)}\b", f"config.{new}", value)
        value = value.replace(f"${{{old}}}", f"${{{new}}}")
    return value


def uses(body: Mapping[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> bool:
    return any(predicate(step) for step in body.get("steps", []))
