"""The rules of formulas (D39-D44): templates, instances, executions and the engine's steps.

No SQL (repository.py) and no commit: the request or the job that calls these owns the
transaction. The engine's writes for one step run (``record_step``) are one commit, made
before the next step starts (by the same job, or by the job this commit queues when the step
waits), so a worker killed at any point loses nothing and repeats at most the step it was in
(D43, D450).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.formulas import schedule, template
from hubgate.formulas.catalog import ShippedTemplate
from hubgate.formulas.models import (
    CANCELLED,
    FAILED,
    FINISHED,
    PENDING,
    QUEUED,
    RETRY,
    SUCCESS,
    Execution,
    Formula,
    FormulaInstance,
    StepExecution,
    StepValue,
)
from hubgate.formulas.repository import FormulaRepository, StepConnection
from hubgate.formulas.steps import Outcome
from hubgate.hub.paging import page_numbers
from hubgate.instances.models import Instance
from hubgate.instances.presenter import iso
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.settings import Settings

Json = Any
STEP_TASK = "formulas.step"
NOTIFY_TASK = "formulas.notify"
WEBHOOK_URLS = "notification.webhook.url"
WEBHOOK_KEY = "notification.webhook.signature.key"
TRIGGER_STEP = "trigger"
# D41: this many failed executions in a row deactivate a formula instance.
MAX_CONSECUTIVE_FAILURES = 100
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 500
TRUNCATED_MARK = "...[truncated]"


@dataclass
class RequestListeners:
    """Per process: the connector instances that elementRequest triggers watch, read at most
    every ``REQUEST_TRIGGER_REFRESH`` seconds so that a hub call pays a set lookup, not a
    query; writes in this process make it read again at once (other processes: D336)."""

    expires: float = 0.0
    instance_ids: frozenset[int] = frozenset()

    def forget(self) -> None:
        self.expires = 0.0


REQUEST_TRIGGER_REFRESH = 5.0
REQUEST_LISTENERS = RequestListeners()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _min_interval(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.formula_min_interval)


# -- templates ---------------------------------------------------------------------------------


def _wire_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(item) for item in items]


def formula_read(row: Formula) -> dict[str, Any]:
    body = row.body
    return {
        "id": row.id,
        "name": row.name,
        "description": body.get("description", ""),
        "active": row.active,
        "engine": "v3",
        "debugLoggingEnabled": body.get("debugLoggingEnabled", True),
        "version": row.version,
        "configuration": _wire_items(body.get("configuration", [])),
        "triggers": _wire_items(body.get("triggers", [])),
        "steps": _wire_items(body.get("steps", [])),
        "createdDate": iso(row.created_at),
        "updatedDate": iso(row.updated_at),
    }


def formula_export(row: Formula) -> dict[str, Any]:
    """The template as ``POST /formulas`` takes it, without ids."""

    def bare(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k != "id"} for item in items]

    wire = formula_read(row)
    return {
        "name": wire["name"],
        "description": wire["description"],
        "active": wire["active"],
        "engine": "v3",
        "configuration": bare(wire["configuration"]),
        "triggers": bare(wire["triggers"]),
        "steps": bare(wire["steps"]),
    }


async def get_formula(session: AsyncSession, tenant: Tenant, formula_id: int) -> Formula:
    row = await FormulaRepository(session).formula(tenant, formula_id)
    if row is None:
        raise HubgateError(404, f"No formula found with id {formula_id}")
    return row


async def create_formula(
    session: AsyncSession, tenant: Tenant, raw: Json, settings: Settings
) -> Formula:
    body = template.check(raw, min_interval=_min_interval(settings))
    row = Formula(
        organization_id=tenant.organization_id,
        account_id=tenant.account_id,
        user_id=tenant.user_id,
        name=body.pop("name"),
        active=body.pop("active"),
        version=1,
        body=body,
    )
    await FormulaRepository(session).add(row)
    return row


async def formula_of_shipped(
    session: AsyncSession, tenant: Tenant, shipped: ShippedTemplate, settings: Settings
) -> Formula:
    """The tenant's template made from a shipped one: the one of that name if there is one
    (so that choosing it again adds an instance, not a copy), else a new one (D370)."""
    for row in await FormulaRepository(session).formulas(tenant):
        if row.name == shipped.name:
            return row
    return await create_formula(session, tenant, copy.deepcopy(shipped.body), settings)


async def replace_formula(
    session: AsyncSession, row: Formula, raw: Json, settings: Settings
) -> Formula:
    repo = FormulaRepository(session)
    body = template.check(raw, min_interval=_min_interval(settings), previous=row.body)
    renames = template.renamed_keys(row.body, body)
    if renames:
        for instance in await repo.instances(tenant_of(row), formula_id=row.id):
            instance.configuration = {
                renames.get(k, k): v for k, v in instance.configuration.items()
            }
    row.name = body.pop("name")
    row.active = body.pop("active")
    row.body = body
    row.version += 1
    REQUEST_LISTENERS.forget()
    await session.flush()
    return row


async def patch_formula(
    session: AsyncSession, row: Formula, raw: Json, settings: Settings
) -> Formula:
    if not isinstance(raw, dict):
        raise bad_request("The formula must be a JSON object")
    merged = {**formula_read(row), **raw}
    return await replace_formula(session, row, merged, settings)


async def delete_formula(session: AsyncSession, row: Formula) -> None:
    repo = FormulaRepository(session)
    if await repo.count_instances(row.id):
        raise HubgateError(409, f"Formula {row.id} has formula instances; delete them first (D331)")
    await repo.delete(row)


def _find(items: Sequence[Mapping[str, Any]], item_id: int, what: str, formula_id: int) -> int:
    for index, item in enumerate(items):
        if item.get("id") == item_id:
            return index
    raise HubgateError(404, f"No {what} {item_id} in formula {formula_id}")


def find_trigger(row: Formula, trigger_id: int) -> dict[str, Any]:
    triggers = row.body.get("triggers", [])
    return dict(triggers[_find(triggers, trigger_id, "trigger", row.id)])


def find_step(row: Formula, step_id: int) -> dict[str, Any]:
    steps = row.body.get("steps", [])
    return dict(steps[_find(steps, step_id, "step", row.id)])


async def edit_parts(
    session: AsyncSession,
    row: Formula,
    settings: Settings,
    *,
    triggers: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> Formula:
    wire = formula_read(row)
    if triggers is not None:
        wire["triggers"] = triggers
    if steps is not None:
        wire["steps"] = steps
    return await replace_formula(session, row, wire, settings)


def without_step(wire: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The template with step ``name`` gone, and gone from every onSuccess and onFailure."""

    def unlink(item: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **item,
            "onSuccess": [s for s in item.get("onSuccess", []) if s != name],
            "onFailure": [s for s in item.get("onFailure", []) if s != name],
        }

    return {
        **wire,
        "steps": [unlink(s) for s in wire["steps"] if s["name"] != name],
        "triggers": [unlink(t) for t in wire["triggers"]],
    }


def tenant_of(row: Formula | FormulaInstance | Execution) -> Tenant:
    return Tenant(row.organization_id, row.account_id, 0, "")


# -- formula instances -------------------------------------------------------------------------


def instance_read(row: FormulaInstance, formula: Formula) -> dict[str, Any]:
    read: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "active": row.active,
        "configuration": dict(row.configuration),
        "settings": dict(row.settings),
        "formula": {"id": formula.id, "name": formula.name, "active": formula.active},
        "numberConsecutiveErrors": row.consecutive_failures,
        "createdDate": iso(row.created_at),
        "updatedDate": iso(row.updated_at),
    }
    if row.first_failure_at is not None:
        read["firstConsecutiveErrorDate"] = iso(row.first_failure_at)
    if row.deactivation_reason:
        read["deactivationReason"] = row.deactivation_reason
    return read


async def get_instance(
    session: AsyncSession, tenant: Tenant, instance_id: int, formula_id: int | None = None
) -> FormulaInstance:
    row = await FormulaRepository(session).instance(tenant, instance_id, formula_id)
    if row is None:
        raise HubgateError(404, f"No formula instance found with id {instance_id}")
    return row


async def _checked_instance_fields(
    session: AsyncSession, tenant: Tenant, formula: Formula, raw: Json, settings: Settings
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("A formula instance must be a JSON object")
    template.storable(raw, "A formula instance")
    name = template.checked_name(raw.get("name"), "formula instance")
    given = raw.get("configuration") or {}
    if not isinstance(given, dict):
        raise bad_request("configuration must be a JSON object of key: value")
    declared = {c["key"]: c for c in formula.body.get("configuration", [])}
    for key in given:
        if key not in declared:
            raise bad_request(f"Configuration key {key!r} is not declared by formula {formula.id}")
    configuration: dict[str, str] = {}
    instance_ids: list[int] = []
    repo = FormulaRepository(session)
    for key, entry in declared.items():
        value = given.get(key)
        if value in (None, ""):
            if entry.get("required", True):
                raise bad_request(f"Configuration {key!r} is required")
            continue
        text = template.as_string(value)
        if not isinstance(text, str):
            text = json.dumps(text)
        if entry["type"] == "elementInstance":
            try:
                instance_id = int(text)
            except ValueError:
                instance_id = 0
            if await repo.owned_instance(tenant, instance_id) is None:
                raise bad_request(f"Configuration {key!r}: no instance {text!r}")
            instance_ids.append(instance_id)
        configuration[key] = text
    for trigger in formula.body.get("triggers", []):
        if trigger["type"] == "scheduled":
            cron = resolve_text(trigger["properties"]["cron"], configuration)
            schedule.check(cron, _min_interval(settings))
    options = raw.get("settings") or {}
    if not isinstance(options, dict):
        raise bad_request("settings must be a JSON object")
    for key in ("notification.email", WEBHOOK_URLS, WEBHOOK_KEY):
        if key in options and not isinstance(options[key], str):
            raise bad_request(f"Setting {key!r} must be a string")
    for url in str(options.get("notification.webhook.url", "")).split(","):
        if url.strip() and not url.strip().startswith(("http://", "https://")):
            raise bad_request(f"notification.webhook.url {url.strip()!r} is not an http(s) URL")
    return {
        "name": name,
        "active": raw.get("active", True) not in (False, "false"),
        "configuration": configuration,
        "settings": options,
        "element_instance_ids": instance_ids,
    }


def webhook_urls(instance: FormulaInstance) -> list[str]:
    return [
        u.strip() for u in str(instance.settings.get(WEBHOOK_URLS) or "").split(",") if u.strip()
    ]


async def failure_notice(
    session: AsyncSession, execution_id: int
) -> tuple[FormulaInstance, bytes] | None:
    """The body posted to a formula instance's webhooks when an execution failed."""
    repo = FormulaRepository(session)
    execution = await repo.execution_by_id(execution_id)
    if execution is None:
        return None
    instance = await repo.instance_by_id(execution.formula_instance_id)
    if instance is None:
        return None
    failed = await steps_read(session, execution, include_values=True, failed_only=True)
    body = {
        "formulaId": execution.formula_id,
        "formulaInstanceId": instance.id,
        "formulaInstanceName": instance.name,
        "executionId": execution.id,
        "status": execution.status,
        "error": execution.error,
        "failedSteps": failed,
        "numberConsecutiveErrors": instance.consecutive_failures,
    }
    return instance, json.dumps(body).encode()


def resolve_text(value: str, configuration: Mapping[str, str]) -> str:
    """A trigger property with ``${config.k}`` / ``${k}`` filled from the instance."""

    def one(match: Any) -> str:
        path = match.group(1).strip()
        key = path[len("config.") :] if path.startswith("config.") else path
        return configuration.get(key, "")

    return template.REFERENCE.sub(one, value)


async def create_instance(
    session: AsyncSession, tenant: Tenant, formula: Formula, raw: Json, settings: Settings
) -> FormulaInstance:
    fields = await _checked_instance_fields(session, tenant, formula, raw, settings)
    row = FormulaInstance(
        organization_id=tenant.organization_id,
        account_id=tenant.account_id,
        user_id=tenant.user_id,
        formula_id=formula.id,
        consecutive_failures=0,
        **fields,
    )
    await FormulaRepository(session).add(row)
    REQUEST_LISTENERS.forget()
    return row


async def replace_instance(
    session: AsyncSession,
    tenant: Tenant,
    formula: Formula,
    row: FormulaInstance,
    raw: Json,
    settings: Settings,
) -> FormulaInstance:
    fields = await _checked_instance_fields(session, tenant, formula, raw, settings)
    for key, value in fields.items():
        setattr(row, key, value)
    if row.active:
        row.deactivation_reason = None
    await session.flush()
    REQUEST_LISTENERS.forget()
    return row


def set_active(row: FormulaInstance, active: bool) -> None:
    REQUEST_LISTENERS.forget()
    row.active = active
    if active:
        row.deactivation_reason = None
        row.consecutive_failures = 0
        row.first_failure_at = None


# -- values ------------------------------------------------------------------------------------


class Value(NamedTuple):
    key: str
    value: str
    truncated: bool


def flatten(name: str, value: Mapping[str, Any], limit: int) -> list[Value]:
    """``steps.<name>`` as Open Connectors stores it: one string per top-level key (B.5); a
    value past ``limit`` bytes is cut and flagged, never dropped (D41)."""
    rows: list[Value] = []
    for key, item in value.items():
        text = item if isinstance(item, str) else json.dumps(item)
        encoded = text.encode()
        truncated = len(encoded) > limit
        if truncated:
            text = encoded[: limit - len(TRUNCATED_MARK)].decode("utf-8", "ignore") + TRUNCATED_MARK
        rows.append(Value(f"{name}.{key}", text, truncated))
    return rows


# -- executions --------------------------------------------------------------------------------


def manual_trigger(args: Json) -> dict[str, Any]:
    return {"type": "manual", "args": args}


def _snapshot(formula: Formula) -> dict[str, Any]:
    return {"id": formula.id, "name": formula.name, "version": formula.version, **formula.body}


async def start_execution(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    instance: FormulaInstance,
    formula: Formula,
    trigger: dict[str, Any],
    *,
    event_id: str | None = None,
    object_id: str | None = None,
    attempt: int = 0,
    origin: Execution | None = None,
    at: datetime | None = None,
) -> Execution:
    """A queued execution, its ``trigger`` step and the job of its first step, together."""
    snapshot = origin.template if origin is not None else _snapshot(formula)
    execution = Execution(
        organization_id=instance.organization_id,
        account_id=instance.account_id,
        formula_instance_id=instance.id,
        formula_id=formula.id,
        template_version=int(snapshot.get("version", formula.version)),
        template=snapshot,
        config=dict(origin.config if origin is not None else instance.configuration),
        trigger=trigger,
        status=QUEUED,
        context={},
        position=1,
        attempt=attempt,
        event_id=event_id,
        object_id=object_id,
        origin_execution_id=origin.id if origin is not None else None,
    )
    return await _begin(session, app, settings, execution, at=at)


async def run_manually(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    tenant: Tenant,
    instance: FormulaInstance,
    args: Json,
) -> Execution:
    """An execution of ``instance`` with ``trigger.args = args`` (the API's and the console's
    "run now"); an inactive instance runs nothing (D344)."""
    template.storable(args, "A trigger's input")
    if not instance.active:
        raise HubgateError(400, f"Formula instance {instance.id} is not active")
    formula = await get_formula(session, tenant, instance.formula_id)
    return await start_execution(session, app, settings, instance, formula, manual_trigger(args))


async def _begin(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    execution: Execution,
    *,
    at: datetime | None = None,
) -> Execution:
    repo = FormulaRepository(session)
    await repo.add(execution)
    now = utcnow()
    snapshot = execution.template
    triggers = snapshot.get("triggers") or [{"onSuccess": [], "onFailure": []}]
    first = list(triggers[0].get("onSuccess", []))
    info = {
        "formulaId": snapshot.get("id"),
        "formulaName": snapshot.get("name"),
        "formulaInstanceId": execution.formula_instance_id,
        "formulaExecutionId": execution.id,
        "formulaStartTime": iso(now),
    }
    execution.context = {"steps": {}, "pending": first, "state": {}, "info": info}
    step = StepExecution(
        execution_id=execution.id,
        position=0,
        step_name=TRIGGER_STEP,
        status=SUCCESS,
        reused=False,
        context_before={},
        started_at=now,
        finished_at=now,
    )
    await repo.add(step)
    await repo.add_all(
        [
            StepValue(step_execution_id=step.id, key=v.key, value=v.value, truncated=v.truncated)
            for v in flatten(TRIGGER_STEP, execution.trigger, settings.formula_max_value_bytes)
        ]
    )
    if first:
        await repo.defer(
            app,
            STEP_TASK,
            schedule_at=at,
            execution_id=execution.id,
            position=1,
        )
    else:
        execution.status = SUCCESS
    return execution


@dataclass
class Run:
    """A step job's hold on one execution (D450): the execution as the job read it, its
    context kept as last committed, and the step at ``position`` that runs next. The job runs
    step after step on it, each committed before the next starts, until one waits or the
    execution ends; ``execution`` is detached and never written through the ORM."""

    execution: Execution
    position: int
    step: dict[str, Any]
    # The connector instances its configuration names, read with it (D452).
    instances: dict[int, Instance]


def reaches(execution: Execution, instance: Instance) -> bool:
    """Whether a step of ``execution`` may call ``instance``: its own tenant's only (D4)."""
    return (instance.organization_id, instance.account_id) == (
        execution.organization_id,
        execution.account_id,
    )


def _configured_instance_ids(execution: Execution) -> list[int]:
    ids = []
    for entry in execution.template.get("configuration", []):
        if entry.get("type") == "elementInstance":
            try:
                ids.append(int(str(execution.config.get(entry.get("key"), ""))))
            except ValueError:
                continue
    return ids


def _step_named(execution: Execution) -> dict[str, Any] | None:
    pending = execution.context.get("pending") or []
    if not pending:
        return None
    for step in execution.template.get("steps", []):
        if step["name"] == pending[0]:
            return dict(step)
    return None


async def begin_run(held: StepConnection, execution_id: int, position: int) -> Run | None:
    """The run of job ``position`` of an execution; None when the job is stale (the execution
    ended, cancelled say, or is before the position the job was deferred for)."""
    taken = await held.take(execution_id, position)
    if taken is None:
        return None
    execution, instances = taken
    step = _step_named(execution)
    if step is None:
        return None
    return Run(execution, execution.position, step, {i.id: i for i in instances})


async def owner_of(session: AsyncSession, execution: Execution, step: Mapping[str, Any]) -> Tenant:
    """Whom a ``request`` step acts as: the template's owner, in the execution's tenant. No
    other step acts as a user, so theirs is the tenant alone, without a query (D373)."""
    if step.get("type") != "request":
        return tenant_of(execution)
    user = await FormulaRepository(session).owner(execution.formula_id)
    if user is None:
        return Tenant(execution.organization_id, execution.account_id, 0, "")
    return Tenant(user.organization_id, user.account_id, user.id, user.email)


def script_context(execution: Execution) -> dict[str, Any]:
    # Not copied: the sandbox takes its inputs as JSON and no step writes into them.
    return {
        "trigger": execution.trigger,
        "steps": execution.context.get("steps", {}),
        "info": execution.context.get("info", {}),
        "config": execution.config,
    }


def run_state(run: Run) -> dict[str, Any]:
    """The engine's state a step run may change (loops, tries, children): a copy, so that
    the held context stays as committed until the step's checkpoint."""
    return copy.deepcopy(run.execution.context.get("state", {}))


@dataclass(frozen=True)
class After:
    """Where one step run leaves its execution: the steps still to run, the execution's
    status and error, and the job's answer ("next": the same job runs the next step)."""

    pending: list[str]
    status: str
    error: str | None
    answer: str


def after_step(run: Run, outcome: Outcome) -> After:
    step = run.step
    if outcome.next_steps is not None:
        following = outcome.next_steps
    else:
        following = list(step["onSuccess"] if outcome.ok else step["onFailure"])
    pending = following + list(run.execution.context.get("pending", [])[1:])
    if not outcome.ok and not following:
        return After(pending, FAILED, outcome.error, "failed")
    if outcome.retry_at is not None:
        return After(pending, RETRY, None, "retry")
    if not pending:
        return After(pending, SUCCESS, None, "success")
    return After(pending, PENDING, None, "next")


def commits_alone(run: Run, outcome: Outcome, *, hand_over: bool = False) -> bool:
    """Whether ``record_step`` writes this step run with one statement and nothing else (no
    job deferred, no other row read): the engine's common case, a step that goes on to the
    next one or ends a top-level execution in success. Such a statement is its own
    transaction, so the engine sends it without BEGIN and COMMIT (D470)."""
    if outcome.again_at is not None or outcome.spawn is not None:
        return False
    status = after_step(run, outcome).status
    if status == PENDING:
        return not hand_over
    return status == SUCCESS and run.execution.parent_execution_id is None


# Steps that act on nothing outside the execution, or act only with the idempotency key of
# their step run (D334): run again, they do no second deed (D471).
REPEATABLE_STEPS = frozenset({"script", "filter", "loop", "elementRequest", "httpRequest"})


def relaxed_commit(run: Run, outcome: Outcome, *, hand_over: bool = False) -> bool:
    """Whether this step run's checkpoint may commit without waiting for the WAL flush (D471).
    A PostgreSQL crash can lose such a commit, and the steps since the last flushed one run
    again: each must be repeatable. A ``request`` step (the platform API, no key) or a
    checkpoint that defers jobs commits durably, and its flush (as any later one: the
    procrastinate job's end) makes every earlier commit durable too."""
    return str(run.step.get("type")) in REPEATABLE_STEPS and commits_alone(
        run, outcome, hand_over=hand_over
    )


class Checkpoints(Protocol):
    """Where a step run's checkpoint statement goes: a session's transaction
    (``FormulaRepository``) or, alone, the connection its job holds (``StepConnection``)."""

    async def checkpoint(self, **params: Any) -> bool: ...


async def record_step(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    run: Run,
    state: dict[str, Any],
    outcome: Outcome,
    started: datetime,
    *,
    hand_over: bool = False,
) -> str:
    """Commit one step run's result with what follows it, in ``session``'s transaction; the
    answer says what happened, and "next" that ``run`` holds the next step, to be run by the
    same job (D450). With ``hand_over`` the next step's job is queued in the same commit
    instead (D454). A step run that ``commits_alone`` goes to ``record_alone`` instead."""
    execution = run.execution
    position = run.position
    repo = FormulaRepository(session)
    if outcome.again_at is not None:
        state["tries"] = int(state.get("tries", 0)) + 1
        if not await repo.hold_step(execution.id, position, json.dumps(state)):
            return "stale"
        await repo.defer(
            app,
            STEP_TASK,
            schedule_at=outcome.again_at,
            execution_id=execution.id,
            position=position,
        )
        return "retry scheduled"
    if outcome.spawn is not None:
        held = await repo.execution_for_update(execution.id)
        if held is None or held.status in FINISHED or held.position != position:
            return "stale"
        context = copy.deepcopy(held.context)
        context["state"] = state
        await _spawn(session, app, settings, held, position, outcome.spawn, context)
        return "sub-formula started"
    after = await _checkpoint(repo, settings, run, state, outcome, started, hand_over=hand_over)
    if after is None:
        return "stale"
    if after.status != PENDING:
        if not _resets(run, after):
            await finish(session, app, settings, execution, retry_at=outcome.retry_at)
        return after.answer
    if hand_over:
        await repo.defer(app, STEP_TASK, execution_id=execution.id, position=position + 1)
        return "handed over"
    return _go_on(run, after)


async def record_alone(
    held: Checkpoints,
    settings: Settings,
    run: Run,
    state: dict[str, Any],
    outcome: Outcome,
    started: datetime,
) -> str:
    """``record_step`` of a step run that ``commits_alone``: its checkpoint, one statement
    sent alone on the connection the job holds (D470, D510), and nothing else."""
    after = await _checkpoint(held, settings, run, state, outcome, started, hand_over=False)
    if after is None:
        return "stale"
    return after.answer if after.status != PENDING else _go_on(run, after)


def _resets(run: Run, after: After) -> bool:
    # A top-level success ends a run of failures: the checkpoint's own statement resets the
    # formula instance's count (what ``finish`` did with a second statement).
    return after.status == SUCCESS and run.execution.parent_execution_id is None


async def _checkpoint(
    writer: Checkpoints,
    settings: Settings,
    run: Run,
    state: dict[str, Any],
    outcome: Outcome,
    started: datetime,
    *,
    hand_over: bool,
) -> After | None:
    """Write a step run's result with ``writer``; None when stale. The job's copy of the
    execution then follows what was written."""
    execution = run.execution
    position = run.position
    state.pop("tries", None)
    state.get("children", {}).pop(str(position), None)
    name = str(run.step["name"])
    after = after_step(run, outcome)
    status = after.status
    values = flatten(name, outcome.value, settings.formula_max_value_bytes)
    written = await writer.checkpoint(
        execution_id=execution.id,
        position=position,
        name=name,
        value=json.dumps(outcome.value),
        pending=json.dumps(after.pending),
        state=json.dumps(state),
        status=status,
        error=after.error,
        step_status=SUCCESS if outcome.ok else FAILED,
        step_error=outcome.error,
        started_at=started,
        finished_at=utcnow(),
        values=json.dumps([v._asdict() for v in values]),
        reset_instance_id=execution.formula_instance_id if _resets(run, after) else None,
        relaxed=relaxed_commit(run, outcome, hand_over=hand_over),
    )
    if not written:
        return None
    # The held copy follows what was committed; the ORM never sees it (detached).
    context = execution.context
    context["steps"] = {**context.get("steps", {}), name: outcome.value}
    context["pending"] = after.pending
    context["state"] = state
    execution.position = position + 1
    execution.status = status
    execution.error = after.error
    return after


def _go_on(run: Run, after: After) -> str:
    """Move ``run`` to the step that follows: the same job runs it (D450)."""
    following_step = _step_named(run.execution)
    if following_step is None:
        return "stale"
    run.position += 1
    run.step = following_step
    return after.answer


async def _spawn(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    parent: Execution,
    position: int,
    spawn: Mapping[str, Any],
    context: dict[str, Any],
) -> None:
    repo = FormulaRepository(session)
    formula = await repo.formula(tenant_of(parent), int(spawn["formulaId"]))
    children = context["state"].setdefault("children", {})
    if formula is None:
        children[str(position)] = {
            "status": FAILED,
            "error": f"No formula found with id {spawn['formulaId']}",
        }
        parent.context = context
        await repo.defer(
            app,
            STEP_TASK,
            execution_id=parent.id,
            position=position,
        )
        return
    child = Execution(
        organization_id=parent.organization_id,
        account_id=parent.account_id,
        formula_instance_id=parent.formula_instance_id,
        formula_id=formula.id,
        template_version=formula.version,
        template=_snapshot(formula),
        config=dict(spawn.get("config") or {}),
        trigger=manual_trigger(spawn.get("args")),
        status=QUEUED,
        context={},
        position=1,
        attempt=0,
        parent_execution_id=parent.id,
        parent_position=position,
    )
    await _begin(session, app, settings, child)
    children[str(position)] = {"id": child.id}
    parent.context = context
    if child.status in FINISHED:
        await _tell_parent(session, app, child)


async def finish(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    execution: Execution,
    *,
    retry_at: datetime | None = None,
) -> None:
    """What follows an execution's end other than a top-level success (whose reset of the
    failure count is the checkpoint's own, D470): the parent's formula step, the instance's
    failure count, the retry's new execution."""
    repo = FormulaRepository(session)
    status, error = execution.status, execution.error
    if execution.parent_execution_id is not None:
        await _tell_parent(session, app, execution)
        return
    instance = await repo.instance_by_id(execution.formula_instance_id)
    if instance is None:
        return
    if status == FAILED:
        if instance.consecutive_failures == 0:
            instance.first_failure_at = utcnow()
        instance.consecutive_failures += 1
        if instance.consecutive_failures > MAX_CONSECUTIVE_FAILURES:
            instance.active = False
            instance.deactivation_reason = (
                f"Deactivated after {instance.consecutive_failures} consecutive failed "
                f"executions; the last: {error or 'failed'}"
            )
        if str(instance.settings.get(WEBHOOK_URLS) or "").strip():
            # Deferred with the failure itself: the notice is sent even if this worker dies.
            await repo.defer(app, NOTIFY_TASK, execution_id=execution.id)
    if status == RETRY and retry_at is not None:
        formula = await repo.formula_by_id(execution.formula_id)
        if formula is not None:
            await start_execution(
                session,
                app,
                settings,
                instance,
                formula,
                execution.trigger,
                event_id=execution.event_id,
                object_id=execution.object_id,
                attempt=execution.attempt + 1,
                origin=execution,
                at=retry_at,
            )


async def _tell_parent(session: AsyncSession, app: procrastinate.App, child: Execution) -> None:
    """A sub-formula ended: its parent's formula step runs again with the result (B.4)."""
    repo = FormulaRepository(session)
    assert child.parent_execution_id is not None
    assert child.parent_position is not None
    parent = await repo.execution_for_update(child.parent_execution_id)
    if parent is None or parent.status in FINISHED:
        return
    steps = child.context.get("steps", {})
    ran = [s for s in await repo.step_executions(child.id) if s.step_name != TRIGGER_STEP]
    last = steps.get(ran[-1].step_name, {}) if ran else {}
    context = copy.deepcopy(parent.context)
    children = context.setdefault("state", {}).setdefault("children", {})
    children[str(child.parent_position)] = {
        "id": child.id,
        "status": child.status,
        "error": child.error,
        "value": last,
    }
    parent.context = context
    await repo.defer(
        app,
        STEP_TASK,
        execution_id=parent.id,
        position=child.parent_position,
    )


async def cancel(session: AsyncSession, execution: Execution, status: Json) -> None:
    if status != CANCELLED:
        raise bad_request('An execution can only be changed to {"status": "cancelled"}')
    if execution.status in FINISHED:
        raise bad_request(f"Execution {execution.id} has finished ({execution.status})")
    if not await FormulaRepository(session).cancel(execution, CANCELLED):
        raise bad_request(f"Execution {execution.id} has finished")


async def rerun(
    session: AsyncSession, app: procrastinate.App, settings: Settings, execution: Execution
) -> Execution:
    if execution.status not in FINISHED:
        raise bad_request(f"Execution {execution.id} has not finished ({execution.status})")
    repo = FormulaRepository(session)
    instance = await repo.instance_by_id(execution.formula_instance_id)
    formula = await repo.formula_by_id(execution.formula_id)
    if instance is None or formula is None:
        raise HubgateError(404, f"The formula instance of execution {execution.id} is gone")
    return await start_execution(
        session,
        app,
        settings,
        instance,
        formula,
        execution.trigger,
        event_id=execution.event_id,
        object_id=execution.object_id,
    )


async def replay(
    session: AsyncSession,
    app: procrastinate.App,
    settings: Settings,
    execution: Execution,
    from_step: Json,
) -> Execution:
    """A new execution on the same template version that reuses the stored results of the
    steps before ``from_step``'s first run and runs it and what follows (D44)."""
    if not isinstance(from_step, str) or not from_step:
        raise bad_request('Give the step to replay from: {"fromStep": "<step name>"}')
    if execution.status not in FINISHED:
        raise bad_request(f"Execution {execution.id} has not finished ({execution.status})")
    repo = FormulaRepository(session)
    ran = await repo.step_executions(execution.id)
    start = next((s for s in ran if s.step_name == from_step and s.step_name != TRIGGER_STEP), None)
    if start is None:
        names = {s["name"] for s in execution.template.get("steps", [])}
        if from_step in names:
            raise bad_request(f"Step {from_step!r} did not run in execution {execution.id}")
        raise bad_request(f"Execution {execution.id} has no step {from_step!r}")
    copy_rows = [s for s in ran if s.position < start.position]
    values = await repo.step_values([s.id for s in copy_rows])
    replayed = Execution(
        organization_id=execution.organization_id,
        account_id=execution.account_id,
        formula_instance_id=execution.formula_instance_id,
        formula_id=execution.formula_id,
        template_version=execution.template_version,
        template=execution.template,
        config=execution.config,
        trigger=execution.trigger,
        status=QUEUED,
        context={},
        position=start.position,
        attempt=execution.attempt,
        event_id=execution.event_id,
        object_id=execution.object_id,
        origin_execution_id=execution.id,
    )
    await repo.add(replayed)
    context = copy.deepcopy(start.context_before)
    context.setdefault("info", {})["formulaExecutionId"] = replayed.id
    replayed.context = context
    now = utcnow()
    for old in copy_rows:
        row = StepExecution(
            execution_id=replayed.id,
            position=old.position,
            step_name=old.step_name,
            status=old.status,
            error=old.error,
            reused=True,
            context_before=old.context_before,
            started_at=now,
            finished_at=now,
        )
        await repo.add(row)
        await repo.add_all(
            [
                StepValue(step_execution_id=row.id, key=v.key, value=v.value, truncated=v.truncated)
                for v in values
                if v.step_execution_id == old.id
            ]
        )
    await repo.defer(
        app,
        STEP_TASK,
        execution_id=replayed.id,
        position=start.position,
    )
    return replayed


# -- reading executions ------------------------------------------------------------------------


def execution_read(row: Execution) -> dict[str, Any]:
    read: dict[str, Any] = {
        "id": row.id,
        "formulaInstanceId": row.formula_instance_id,
        "formulaId": row.formula_id,
        "formulaVersion": row.template_version,
        "status": row.status,
        "attempt": row.attempt,
        "createdDate": iso(row.created_at),
        "updatedDate": iso(row.updated_at),
    }
    if row.event_id:
        read["eventId"] = row.event_id
    if row.object_id:
        read["objectId"] = row.object_id
    if row.origin_execution_id is not None:
        read["originExecutionId"] = row.origin_execution_id
    if row.parent_execution_id is not None:
        read["parentExecutionId"] = row.parent_execution_id
    if row.error:
        read["error"] = row.error
    return read


def step_read(row: StepExecution, values: Sequence[StepValue] | None) -> dict[str, Any]:
    read: dict[str, Any] = {
        "id": row.id,
        "stepName": row.step_name,
        "status": row.status,
        "createdDate": iso(row.started_at),
        "updatedDate": iso(row.finished_at),
        "duration": round((row.finished_at - row.started_at).total_seconds() * 1000),
    }
    if row.reused:
        read["reused"] = True
    if row.error:
        read["error"] = row.error
    if values is not None:
        read["stepExecutionValues"] = [
            {
                "id": v.id,
                "key": v.key,
                "value": v.value,
                **({"truncated": True} if v.truncated else {}),
            }
            for v in values
        ]
    return read


async def steps_read(
    session: AsyncSession, execution: Execution, *, include_values: bool, failed_only: bool = False
) -> list[dict[str, Any]]:
    repo = FormulaRepository(session)
    rows = [
        r for r in await repo.step_executions(execution.id) if not failed_only or r.status == FAILED
    ]
    by_step: dict[int, list[StepValue]] = {r.id: [] for r in rows}
    if include_values:
        for value in await repo.step_values([r.id for r in rows]):
            by_step[value.step_execution_id].append(value)
    return [step_read(r, by_step[r.id] if include_values else None) for r in rows]


def page_size(raw: str | None) -> int:
    # As every other list: a bad size is a 400, a size above the cap is the cap (D202).
    return page_numbers(
        page=None, page_size=raw, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE
    )[1]


def page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{last_id}".encode()).decode().rstrip("=")


def parse_page_token(token: str | None) -> int | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith("e") and 0 < int(text[1:]) < 2**63:
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise bad_request("nextPage is not a page token this API gave")


# -- common resources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    formula_id: int
    formula_name: str
    count: int


def _names_resource(api: Json, name: str) -> bool:
    segments = [s for s in str(api).split("?", 1)[0].split("/") if s]
    return len(segments) >= 3 and segments[0] == "hubs" and segments[2] == name


async def common_resource_usages(session: AsyncSession, tenant: Tenant, name: str) -> list[Usage]:
    """The tenant's formulas whose elementRequest steps call common resource ``name``, with
    how many steps do (``GET /common-resources/{name}/usages``)."""
    usages = []
    for formula in await FormulaRepository(session).formulas(tenant):
        count = sum(
            1
            for step in formula.body.get("steps", [])
            if step["type"] == "elementRequest"
            and _names_resource(step["properties"].get("api"), name)
        )
        if count:
            usages.append(Usage(formula.id, formula.name, count))
    return usages
