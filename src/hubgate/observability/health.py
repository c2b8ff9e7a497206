"""Liveness and readiness (D65): what a load balancer or an orchestrator asks before it sends
traffic. The answer names the checks that failed and nothing else: no versions, no errors,
no host names, since anyone who can reach the port can ask."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from hubgate.db.migrate import script_heads
from hubgate.observability import repository
from hubgate.runtime import Runtime

log = logging.getLogger("hubgate.health")

# A probe must answer within its own timeout (often 1-5 s): a database that does not answer
# this fast counts as unreachable.
CHECK_TIMEOUT = 3.0


@dataclass(frozen=True)
class Readiness:
    database: bool
    migrations: bool
    worker: bool

    @property
    def ready(self) -> bool:
        return self.database and self.migrations and self.worker

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {
                "database": self.database,
                "migrations": self.migrations,
                "worker": self.worker,
            },
        }


async def readiness(runtime: Runtime) -> Readiness:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), runtime.sessions() as session:
            revisions = await repository.schema_revisions(session)
            age = await repository.newest_heartbeat_age(session)
    except Exception as error:
        # Whatever kept the question from being answered (refused, timed out, shutting down)
        # means the same to a probe: not reachable.
        log.warning("readiness: the database did not answer (%s)", type(error).__name__)
        return Readiness(database=False, migrations=False, worker=False)
    return Readiness(
        database=True,
        migrations=revisions == script_heads(),
        worker=age is not None and age < runtime.settings.ready_worker_age,
    )
