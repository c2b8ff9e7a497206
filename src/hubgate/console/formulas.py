"""The console's formula pages (D33's "use in a formula" step; D370-D372): what they show and
what their buttons do, over the formulas service. No SQL here, no commit.

From an instance page one opens the catalog of shipped templates; choosing one asks for the
template's configuration (its connector instances, preset to this one, and its values) and
makes a formula instance. The formula instance's page lists its executions and shows one as a
timeline: each step with what it was given, what it gave, its status and its duration, a
"replay from here" per step (D44), and "run now" when the trigger is manual.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.service import when
from hubgate.db.tenancy import Tenant
from hubgate.formulas import service as formulas
from hubgate.formulas import steps as formula_steps
from hubgate.formulas.catalog import ShippedTemplate
from hubgate.formulas.models import FINISHED, Execution, FormulaInstance, StepExecution
from hubgate.formulas.repository import FormulaRepository
from hubgate.instances.models import Instance
from hubgate.instances.repository import InstanceRepository
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.runtime import Runtime

# The formula instance page lists this many executions, newest first.
EXECUTIONS_SHOWN: Final = 25
ELEMENT_INSTANCE: Final = "elementInstance"
# Steps whose ``body`` is JavaScript, shown as written rather than with references filled.
CODE_STEPS: Final = frozenset({"script", "filter"})


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class ConfigField:
    """One configuration variable of a template, as the set-up form asks for it."""

    key: str
    name: str
    type: str
    description: str
    value: str = ""
    choices: list[Choice] = field(default_factory=list)


@dataclass(frozen=True)
class Bound:
    """A formula instance that names this connector instance in its configuration."""

    id: int
    name: str
    formula_name: str
    active: bool


@dataclass(frozen=True)
class StepView:
    position: int
    name: str
    type: str
    status: str
    started: str
    duration_ms: int
    given: str | None
    values: list[tuple[str, str, bool]]
    error: str | None
    reused: bool
    replayable: bool


@dataclass(frozen=True)
class ExecutionRow:
    id: int
    status: str
    created: str
    trigger: str
    origin: int | None


@dataclass
class InstancePage:
    instance: FormulaInstance
    formula_name: str
    trigger_type: str
    configuration: list[tuple[str, str, str | None]]  # label, value, link
    executions: list[ExecutionRow]
    chosen: ExecutionRow | None = None
    chosen_error: str | None = None
    timeline: list[StepView] = field(default_factory=list)
    running: bool = False


def _choices(instances: Sequence[Instance]) -> list[Choice]:
    return [Choice(str(i.id), f"{i.name} ({i.element_key}, instance {i.id})") for i in instances]


def _preset(entries: Sequence[Mapping[str, Any]], instance: Instance) -> str | None:
    """The elementInstance variable this instance fills: the one whose key or name names the
    instance's element (``twilio`` for a twiliov2 instance), else the first one (D371)."""
    variables = [e for e in entries if e.get("type") == ELEMENT_INSTANCE]
    element = instance.element_key.lower()
    for entry in variables:
        words = f"{entry['key']} {entry.get('name', '')}".lower().replace("-", " ").split()
        if any(element.startswith(word) for word in words if len(word) > 2):
            return str(entry["key"])
    return str(variables[0]["key"]) if variables else None


async def setup_fields(
    session: AsyncSession,
    tenant: Tenant,
    instance: Instance,
    shipped: ShippedTemplate,
    given: Mapping[str, str] | None = None,
) -> list[ConfigField]:
    """The set-up form's fields; ``given`` is what a refused form sent, shown again."""
    entries = shipped.configuration
    choices = _choices(await InstanceRepository(session).list(tenant))
    preset = _preset(entries, instance)
    fields = []
    for entry in entries:
        key = str(entry["key"])
        row = ConfigField(
            key=key,
            name=str(entry.get("name") or key),
            type=str(entry["type"]),
            description=str(entry.get("description") or ""),
        )
        if row.type == ELEMENT_INSTANCE:
            row.choices = choices
            row.value = str(instance.id) if key == preset else ""
        if given is not None:
            row.value = given.get(f"config-{key}", "")
        fields.append(row)
    return fields


async def create_instance(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    shipped: ShippedTemplate,
    name: str,
    given: Mapping[str, str],
) -> FormulaInstance:
    """The tenant's template of ``shipped`` (made on first use) and a formula instance of it
    configured from the form; a refused configuration is the service's 400."""
    settings = runtime.settings
    formula = await formulas.formula_of_shipped(session, tenant, shipped, settings)
    configuration = {
        str(e["key"]): given.get(f"config-{e['key']}", "").strip() for e in shipped.configuration
    }
    body = {"name": name.strip() or shipped.name, "configuration": configuration}
    return await formulas.create_instance(session, tenant, formula, body, settings)


async def bound_to(session: AsyncSession, tenant: Tenant, instance: Instance) -> list[Bound]:
    repo = FormulaRepository(session)
    names = {f.id: f.name for f in await repo.formulas(tenant)}
    rows = await repo.instances(tenant, element_instance_id=instance.id)
    return [Bound(r.id, r.name, names.get(r.formula_id, ""), r.active) for r in rows]


def _opened(value: Any) -> Any:
    """``value`` with JSON held in strings (bodies, headers, D340's values) opened, so that
    the page shows one indented document rather than escaped text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _opened(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _opened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_opened(v) for v in value]
    return value


def _pretty(value: Any) -> str:
    opened = _opened(value)
    if isinstance(opened, str):
        return opened
    return json.dumps(opened, indent=2, ensure_ascii=False)


def _given(execution: Execution, step: Mapping[str, Any], row: StepExecution) -> str | None:
    """What the step was given: its properties with references filled from the context it
    ran in (kept per step row for replay, D343); a script's code as written."""
    properties = step.get("properties") or {}
    if step.get("type") not in CODE_STEPS:
        before = row.context_before
        context = {
            "trigger": execution.trigger,
            "steps": before.get("steps", {}),
            "info": before.get("info", {}),
            "config": execution.config,
        }
        return _pretty(formula_steps.resolve(properties, context))
    return json.dumps(properties, indent=2, ensure_ascii=False)


async def timeline(session: AsyncSession, execution: Execution) -> list[StepView]:
    repo = FormulaRepository(session)
    rows = await repo.step_executions(execution.id)
    by_step: dict[int, list[tuple[str, str, bool]]] = {r.id: [] for r in rows}
    for value in await repo.step_values([r.id for r in rows]):
        by_step[value.step_execution_id].append((value.key, _pretty(value.value), value.truncated))
    declared = {s["name"]: s for s in execution.template.get("steps", [])}
    finished = execution.status in FINISHED
    views = []
    for row in rows:
        is_trigger = row.step_name == formulas.TRIGGER_STEP
        step = declared.get(row.step_name, {})
        views.append(
            StepView(
                position=row.position,
                name=row.step_name,
                type=str(execution.trigger.get("type", "")) if is_trigger else step.get("type", ""),
                status=row.status,
                started=row.started_at.strftime("%H:%M:%S.%f")[:-3],
                duration_ms=round((row.finished_at - row.started_at).total_seconds() * 1000),
                given=None if is_trigger or not step else _given(execution, step, row),
                values=by_step[row.id],
                error=row.error,
                reused=row.reused,
                replayable=finished and not is_trigger and bool(step),
            )
        )
    return views


def _row(execution: Execution) -> ExecutionRow:
    return ExecutionRow(
        id=execution.id,
        status=execution.status,
        created=when(execution.created_at),
        trigger=str(execution.trigger.get("type", "")),
        origin=execution.origin_execution_id,
    )


async def _configuration(
    session: AsyncSession, tenant: Tenant, instance: FormulaInstance, entries: Sequence[Any]
) -> list[tuple[str, str, str | None]]:
    repo = FormulaRepository(session)
    rows: list[tuple[str, str, str | None]] = []
    for entry in entries:
        key = str(entry["key"])
        value = instance.configuration.get(key, "")
        link = None
        if entry["type"] == ELEMENT_INSTANCE and value.isdigit():
            connector = await repo.owned_instance(tenant, int(value))
            if connector is not None:
                value, link = f"{connector.name} (instance {connector.id})", f"/instances/{value}"
        rows.append((str(entry.get("name") or key), value, link))
    return rows


async def instance_page(
    session: AsyncSession, tenant: Tenant, instance_id: int, execution_id: int | None
) -> InstancePage:
    """The page of a formula instance with execution ``execution_id`` (else the newest) shown
    as a timeline."""
    instance = await formulas.get_instance(session, tenant, instance_id)
    formula = await formulas.get_formula(session, tenant, instance.formula_id)
    repo = FormulaRepository(session)
    executions = await repo.executions(tenant, instance_id=instance.id, limit=EXECUTIONS_SHOWN)
    triggers = formula.body.get("triggers") or [{}]
    page = InstancePage(
        instance=instance,
        formula_name=formula.name,
        trigger_type=str(triggers[0].get("type", "")),
        configuration=await _configuration(
            session, tenant, instance, formula.body.get("configuration", [])
        ),
        executions=[_row(e) for e in executions],
    )
    chosen: Execution | None = executions[0] if executions else None
    if execution_id is not None:
        chosen = await repo.execution(tenant, execution_id)
        if chosen is None or chosen.formula_instance_id != instance.id:
            page.chosen_error = f"Formula instance {instance.id} has no execution {execution_id}."
            chosen = None
    if chosen is not None:
        page.chosen = _row(chosen)
        page.timeline = await timeline(session, chosen)
        page.running = chosen.status not in FINISHED
    return page


def parse_args(text: str) -> Any:
    """The "run now" form's input: JSON, ``{}`` when left empty."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise bad_request(f"The input is not JSON: {exc}") from exc


async def run_now(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, instance_id: int, text: str
) -> Execution:
    instance = await formulas.get_instance(session, tenant, instance_id)
    return await formulas.run_manually(
        session, runtime.jobs.app, runtime.settings, tenant, instance, parse_args(text)
    )


async def replay(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    instance_id: int,
    execution_id: int,
    step: str,
) -> Execution:
    instance = await formulas.get_instance(session, tenant, instance_id)
    execution = await FormulaRepository(session).execution(tenant, execution_id)
    if execution is None or execution.formula_instance_id != instance.id:
        raise HubgateError(404, f"Formula instance {instance.id} has no execution {execution_id}")
    return await formulas.replay(session, runtime.jobs.app, runtime.settings, execution, step)
