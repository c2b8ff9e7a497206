"""All SQL about formulas, tenant-scoped through ``scoped``; the engine's reads go by id.

Jobs carry ids only: the engine reads an execution by id (``execution_for_update``) because
the job was deferred by whoever owned it; everything a person asks for goes through a Tenant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import procrastinate
import psycopg
from psycopg.rows import dict_row
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    and_,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class

from hubgate.db.tenancy import Tenant, scoped
from hubgate.formulas.models import (
    FAILED,
    FINISHED,
    PENDING,
    QUEUED,
    Execution,
    Formula,
    FormulaInstance,
    StepExecution,
    StepValue,
)
from hubgate.instances.models import Instance
from hubgate.tenants.models import User

_MAX_ID = 2**63
_FINISHED = sorted(FINISHED)

# One step run's checkpoint in one statement (D451): under the execution's row lock, if the
# execution is still at ``position`` and unfinished, its context takes the step's own part
# (its value, the pending steps, the engine's state; the rest of the context is not sent), its
# position moves on and its status is set; the step row stores the context as it was (what a
# replay from here starts from) and the step's values go in beside it, sent as one JSON array
# (``values``: psycopg's quoting of text arrays cost more than the C encoder's JSON). A
# top-level success also ends its formula instance's run of failures (``reset_instance_id``;
# an instance without one is not written). No row: stale. Sent alone (D470), on the
# connection its job holds (D510), it is its own transaction, and ``relaxed`` lets that commit
# return before the WAL flush (D471). The driver's own placeholders: it is sent by psycopg
# directly, prepared once per connection, in a transaction or alone.
_CHECKPOINT = """
    WITH held AS (
        SELECT id, context FROM formula_executions
        WHERE id = %(execution_id)s AND position = %(position)s
            AND status <> ALL(%(finished)s)
        FOR UPDATE
    ), moved AS (
        UPDATE formula_executions AS e SET
            context = held.context || jsonb_build_object(
                'steps', COALESCE(held.context -> 'steps', '{}'::jsonb)
                    || jsonb_build_object(CAST(%(name)s AS text), CAST(%(value)s AS jsonb)),
                'pending', CAST(%(pending)s AS jsonb),
                'state', CAST(%(state)s AS jsonb)
            ),
            position = %(position)s + 1,
            status = %(status)s,
            error = %(error)s,
            updated_at = now()
        FROM held WHERE e.id = held.id
    ), step AS (
        INSERT INTO formula_step_executions (execution_id, position, step_name, status, error,
            reused, context_before, started_at, finished_at)
        SELECT held.id, %(position)s, %(name)s, %(step_status)s, %(step_error)s, false,
            held.context, %(started_at)s, %(finished_at)s
        FROM held
        RETURNING id
    ), stored AS (
        INSERT INTO formula_step_values (step_execution_id, key, value, truncated)
        SELECT step.id, v.key, v.value, v.truncated
        FROM step, ROWS FROM (json_to_recordset(CAST(%(values)s AS json))
            AS (key text, value text, truncated boolean)) WITH ORDINALITY AS v(key, value,
            truncated, n)
        ORDER BY v.n
    ), flush AS (
        -- Local to this statement's own transaction (D471): whether its commit waits for
        -- the WAL to reach the disk.
        SELECT set_config('synchronous_commit', CASE WHEN CAST(%(relaxed)s AS boolean)
            THEN 'off' ELSE current_setting('synchronous_commit') END, true)
    ), reset AS (
        UPDATE formula_instances SET consecutive_failures = 0, first_failure_at = NULL
        FROM held
        WHERE formula_instances.id = CAST(%(reset_instance_id)s AS bigint)
            AND (consecutive_failures <> 0 OR first_failure_at IS NOT NULL)
    )
    SELECT step.id FROM step, flush
"""
_INSTANCE_COLUMNS = [column.name for column in cast(Table, Instance.__table__).columns]
_INSTANCE = "instance."
# A step job's take of its execution (D450) and the read of the connector instances its
# configuration names (D452), one statement (D510): ``queued`` becomes ``pending``; no row when
# it ended or is before the job's position (stale); else one row per instance found, the
# execution's columns repeated beside each (one row with the instance's columns null when none
# is). An entry whose value is not an id is not read here: a step that names it reads it then.
# Only the model's own column names are put into the text. Its commit does not wait for the WAL
# flush (D525): a take lost with a PostgreSQL crash leaves the execution ``queued`` at the same
# position, taken again by the job's next run, and any later flushed commit makes it durable.
_TAKE = f"""
    WITH taken AS (
        UPDATE formula_executions SET
            status = CASE WHEN status = %(queued)s THEN %(pending)s ELSE status END
        WHERE id = %(execution_id)s AND position >= %(at_position)s
            AND status <> ALL(%(finished)s)
        RETURNING *
    ), named AS (
        SELECT CAST(taken.config ->> (entry ->> 'key') AS bigint) AS id
        FROM taken, jsonb_array_elements(COALESCE(taken.template -> 'configuration', '[]'))
            AS entry
        WHERE entry ->> 'type' = 'elementInstance'
            AND taken.config ->> (entry ->> 'key') ~ '^[0-9]{{1,18}}$'
    ), flush AS (
        -- Local to this statement's own transaction (D525): its commit does not wait for the
        -- WAL flush.
        SELECT set_config('synchronous_commit', 'off', true)
    )
    SELECT taken.*, {", ".join(f'i.{name} AS "{_INSTANCE}{name}"' for name in _INSTANCE_COLUMNS)}
    FROM taken CROSS JOIN flush LEFT JOIN instances AS i ON i.id IN (SELECT id FROM named)
"""  # noqa: S608
_CONNECTOR_INSTANCE = "SELECT * FROM instances WHERE id = %(instance_id)s"
# A step that waits (a retry delay) keeps its position; only the engine's state changes.
_HOLD = text(
    """
    UPDATE formula_executions SET
        context = jsonb_set(context, '{state}', CAST(:state AS jsonb)), updated_at = now()
    WHERE id = :execution_id AND position = :position
        AND status <> ALL(CAST(:finished AS varchar[]))
    RETURNING id
    """
)


def _valid(row_id: int) -> bool:
    # Ids past BIGINT cannot exist; asking the database would only raise.
    return 0 < row_id < _MAX_ID


def listens_to(element_instance_id: ColumnElement[int]) -> ColumnElement[bool]:
    """An active formula instance whose configuration names this connector instance: the
    condition of ``listening_to``, also read by the statement that inserts a vendor webhook's
    events (events.repository), in the same snapshot as the insert."""
    return and_(
        FormulaInstance.element_instance_ids.contains(func.jsonb_build_array(element_instance_id)),
        FormulaInstance.active.is_(True),
    )


class FormulaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Any) -> None:
        self.session.add(row)
        await self.session.flush()

    async def add_all(self, rows: Sequence[Any]) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def delete(self, row: Any) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def _one(self, stmt: Select[Any]) -> Any:
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # ------------------------------------------------------------------ templates

    async def formula(self, tenant: Tenant, formula_id: int) -> Formula | None:
        if not _valid(formula_id):
            return None
        stmt = scoped(select(Formula), Formula, tenant).where(Formula.id == formula_id)
        found: Formula | None = await self._one(stmt)
        return found

    async def formula_by_id(self, formula_id: int) -> Formula | None:
        return await self.session.get(Formula, formula_id) if _valid(formula_id) else None

    async def formulas(self, tenant: Tenant) -> Sequence[Formula]:
        stmt = scoped(select(Formula), Formula, tenant).order_by(Formula.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def owner(self, formula_id: int) -> User | None:
        """The user who made the formula: its request steps call the platform as them."""
        stmt = (
            select(User).join(Formula, Formula.user_id == User.id).where(Formula.id == formula_id)
        )
        found: User | None = await self._one(stmt)
        return found

    async def count_instances(self, formula_id: int) -> int:
        stmt = select(func.count()).where(FormulaInstance.formula_id == formula_id)
        return int((await self.session.execute(stmt)).scalar_one())

    # ------------------------------------------------------------------ instances

    async def instance(
        self, tenant: Tenant, instance_id: int, formula_id: int | None = None
    ) -> FormulaInstance | None:
        if not _valid(instance_id) or (formula_id is not None and not _valid(formula_id)):
            return None
        stmt = scoped(select(FormulaInstance), FormulaInstance, tenant).where(
            FormulaInstance.id == instance_id
        )
        if formula_id is not None:
            stmt = stmt.where(FormulaInstance.formula_id == formula_id)
        found: FormulaInstance | None = await self._one(stmt)
        return found

    async def instance_by_id(self, instance_id: int) -> FormulaInstance | None:
        return await self.session.get(FormulaInstance, instance_id)

    async def instances(
        self,
        tenant: Tenant,
        *,
        formula_id: int | None = None,
        element_instance_id: int | None = None,
        search: str | None = None,
        include_inactive: bool = True,
    ) -> Sequence[FormulaInstance]:
        stmt = scoped(select(FormulaInstance), FormulaInstance, tenant)
        if formula_id is not None:
            stmt = stmt.where(FormulaInstance.formula_id == formula_id)
        if element_instance_id is not None:
            stmt = stmt.where(FormulaInstance.element_instance_ids.contains([element_instance_id]))
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.join(Formula, Formula.id == FormulaInstance.formula_id).where(
                or_(
                    FormulaInstance.name.ilike(pattern + "%", escape="\\"),
                    Formula.name.ilike(pattern + "%", escape="\\"),
                )
            )
        if not include_inactive:
            stmt = stmt.where(FormulaInstance.active.is_(True))
        return (await self.session.execute(stmt.order_by(FormulaInstance.id))).scalars().all()

    async def listening_to(self, element_instance_id: int) -> Sequence[FormulaInstance]:
        """Active formula instances whose configuration names this connector instance."""
        stmt = select(FormulaInstance).where(listens_to(literal(element_instance_id, BigInteger)))
        return (await self.session.execute(stmt)).scalars().all()

    async def owned_instance(self, tenant: Tenant, instance_id: int) -> Instance | None:
        if not _valid(instance_id):
            return None
        stmt = scoped(select(Instance), Instance, tenant).where(Instance.id == instance_id)
        found: Instance | None = await self._one(stmt)
        return found

    # ------------------------------------------------------------------ executions

    async def execution(self, tenant: Tenant, execution_id: int) -> Execution | None:
        if not _valid(execution_id):
            return None
        stmt = scoped(select(Execution), Execution, tenant).where(Execution.id == execution_id)
        found: Execution | None = await self._one(stmt)
        return found

    async def execution_for_update(self, execution_id: int) -> Execution | None:
        stmt = select(Execution).where(Execution.id == execution_id).with_for_update()
        found: Execution | None = await self._one(stmt)
        return found

    async def checkpoint(self, **params: Any) -> bool:
        """Write one step run's result in this session's transaction (``_CHECKPOINT``); False
        when the execution is no longer at that position or has ended."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        return await _checkpoint(raw.driver_connection, params)  # type: ignore[arg-type]

    async def hold_step(self, execution_id: int, position: int, state: str) -> bool:
        params = {
            "execution_id": execution_id,
            "position": position,
            "state": state,
            "finished": _FINISHED,
        }
        return (await self.session.execute(_HOLD, params)).first() is not None

    async def execution_by_id(self, execution_id: int) -> Execution | None:
        return await self.session.get(Execution, execution_id)

    async def executions(
        self,
        tenant: Tenant,
        *,
        instance_id: int | None = None,
        formula_id: int | None = None,
        before_id: int | None = None,
        limit: int,
        event_id: str | None = None,
        object_id: str | None = None,
        errors_only: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[Execution]:
        stmt = scoped(select(Execution), Execution, tenant).where(
            Execution.parent_execution_id.is_(None)
        )
        if instance_id is not None:
            stmt = stmt.where(Execution.formula_instance_id == instance_id)
        if formula_id is not None:
            stmt = stmt.where(Execution.formula_id == formula_id)
        if before_id is not None:
            stmt = stmt.where(Execution.id < before_id)
        if event_id is not None:
            stmt = stmt.where(Execution.event_id == event_id)
        if object_id is not None:
            stmt = stmt.where(Execution.object_id == object_id)
        if errors_only:
            stmt = stmt.where(Execution.status == FAILED)
        if since is not None:
            stmt = stmt.where(Execution.created_at >= since)
        if until is not None:
            stmt = stmt.where(Execution.created_at <= until)
        stmt = stmt.order_by(Execution.id.desc()).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def cancel(self, execution: Execution, status: str) -> bool:
        """Set a status on an unfinished execution; False when it finished meanwhile."""
        stmt = (
            update(Execution)
            .where(Execution.id == execution.id, Execution.status.not_in(FINISHED))
            .values(status=status, updated_at=func.now())
        )
        done = (await self.session.execute(stmt)).rowcount  # type: ignore[attr-defined]
        return bool(done)

    async def step_executions(self, execution_id: int) -> Sequence[StepExecution]:
        stmt = (
            select(StepExecution)
            .where(StepExecution.execution_id == execution_id)
            .order_by(StepExecution.position)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def step_values(self, step_ids: Sequence[int]) -> Sequence[StepValue]:
        if not step_ids:
            return []
        stmt = (
            select(StepValue)
            .where(StepValue.step_execution_id.in_(step_ids))
            .order_by(StepValue.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def delete_steps_from(self, execution_id: int, position: int) -> None:
        await self.session.execute(
            delete(StepExecution).where(
                StepExecution.execution_id == execution_id, StepExecution.position >= position
            )
        )

    # ------------------------------------------------------------------ jobs

    async def defer(
        self,
        app: procrastinate.App,
        task: str,
        *,
        lock: str | None = None,
        schedule_at: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        """Defer a job in this session's transaction: it exists if and only if the
        transaction commits (D43)."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        job = app.configure_task(
            task, allow_unknown=False, lock=lock, schedule_at=schedule_at
        ).make_new_job(**kwargs)
        await app.job_manager.defer_job_async(job, connection=raw.driver_connection)

    # ------------------------------------------------------------------ triggers

    async def scheduled_instances(self) -> Sequence[tuple[FormulaInstance, Formula]]:
        """Active formula instances of active templates whose trigger is ``scheduled``."""
        stmt = (
            select(FormulaInstance, Formula)
            .join(Formula, Formula.id == FormulaInstance.formula_id)
            .where(
                FormulaInstance.active.is_(True),
                Formula.active.is_(True),
                Formula.body["triggers"].contains([{"type": "scheduled"}]),
            )
            .order_by(FormulaInstance.id)
        )
        return [(i, f) for i, f in (await self.session.execute(stmt)).all()]

    async def lock_instance(self, instance_id: int) -> FormulaInstance | None:
        stmt = select(FormulaInstance).where(FormulaInstance.id == instance_id).with_for_update()
        found: FormulaInstance | None = await self._one(stmt)
        return found

    async def request_listeners(self) -> Sequence[tuple[FormulaInstance, Formula]]:
        """Active formula instances of active templates whose trigger is ``elementRequest``."""
        stmt = (
            select(FormulaInstance, Formula)
            .join(Formula, Formula.id == FormulaInstance.formula_id)
            .where(
                FormulaInstance.active.is_(True),
                Formula.active.is_(True),
                Formula.body["triggers"].contains([{"type": "elementRequest"}]),
            )
        )
        return [(i, f) for i, f in (await self.session.execute(stmt)).all()]


_Row = TypeVar("_Row")


def _detached(model: type[_Row], values: Mapping[str, Any]) -> _Row:
    """An object of ``model`` holding ``values`` as a query would have loaded them, in no
    session. Built by the class manager, not by the mapped constructor, which sets each
    attribute through the instrumentation (its events and history): 40 µs for an execution
    against 6, for objects the engine only reads (D528). The mappers are configured first, as
    the constructor would: a worker may build one before any query did."""
    configure_mappers()
    found: _Row = manager_of_class(model).new_instance()
    found.__dict__.update(values)
    return found


async def _checkpoint(connection: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> bool:
    cursor = await connection.execute(_CHECKPOINT, {**params, "finished": _FINISHED}, prepare=True)
    return await cursor.fetchone() is not None


class StepConnection:
    """The formula engine's statements on the connection a step job holds (D510): sent by
    the driver itself, prepared once per connection, each its own transaction (the pool's
    connections are in autocommit, D470). Nothing here defers a job or needs a snapshot
    shared between statements: that work goes through a ``FormulaRepository`` session."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    async def take(
        self, execution_id: int, position: int
    ) -> tuple[Execution, list[Instance]] | None:
        """The execution a step job is to run, marked ``pending``, with the connector
        instances its configuration names; both detached (the engine never writes them
        through the ORM). None when it ended or is before ``position``: the job is stale. A
        job run again after its worker died finds the execution further on and goes on from
        there (D450)."""
        params = {
            "execution_id": execution_id,
            "at_position": position,
            "queued": QUEUED,
            "pending": PENDING,
            "finished": _FINISHED,
        }
        async with self.connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_TAKE, params, prepare=True)
            rows = await cursor.fetchall()
        if not rows:
            return None
        first = rows[0]
        execution = _detached(
            Execution, {k: v for k, v in first.items() if not k.startswith(_INSTANCE)}
        )
        instances = [
            _detached(Instance, {name: row[_INSTANCE + name] for name in _INSTANCE_COLUMNS})
            for row in rows
            if row[_INSTANCE + "id"] is not None
        ]
        return execution, instances

    async def connector_instance(self, instance_id: int) -> Instance | None:
        if not _valid(instance_id):
            return None
        async with self.connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_CONNECTOR_INSTANCE, {"instance_id": instance_id})
            row = await cursor.fetchone()
        return None if row is None else _detached(Instance, row)

    async def checkpoint(self, **params: Any) -> bool:
        """Write one step run's result alone (``_CHECKPOINT``); False when the execution is
        no longer at that position or has ended."""
        return await _checkpoint(self.connection, params)
