"""What a hub call reads from the database under load: the elementRequest listeners once (D361)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from hubgate.formulas import service as formulas
from hubgate.formulas import triggers
from tests.conftest import RunningHubgate


async def test_calls_that_find_the_listeners_stale_share_one_read(
    hubgate: RunningHubgate,
) -> None:
    runtime = hubgate.runtime
    engine = runtime.sessions.kw["bind"].sync_engine
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "JOIN formulas" in statement and "formula_instances" in statement:
            reads.append(statement)

    formulas.REQUEST_LISTENERS.forget()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        answers = await asyncio.gather(*(triggers._listening(runtime) for _ in range(25)))
        # Fresh now: the next calls read nothing.
        again = await triggers._listening(runtime)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(reads) == 1
    assert all(answer == again for answer in answers)
