"""Operators' routes at the server's root, outside the Open Connectors API (D65, D232)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from hubgate.deps import get_runtime
from hubgate.events.models import PENDING_STATUSES
from hubgate.kit.errors import HubgateError
from hubgate.observability import metrics, repository
from hubgate.observability.health import readiness
from hubgate.runtime import Runtime

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Alive: the process answers. Nothing else is checked, so a restart never fixes a
    database outage by killing healthy servers."""
    return JSONResponse({"status": "alive"})


@router.get("/readyz")
async def readyz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JSONResponse:
    state = await readiness(runtime)
    return JSONResponse(state.as_json(), status_code=200 if state.ready else 503)


@router.get("/metrics")
async def prometheus_metrics(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Response:
    """Prometheus text format (D62); a bearer token when HUBGATE_METRICS_TOKEN is set."""
    if not runtime.settings.metrics_enabled:
        # The answer of any path Hubgate does not serve: nothing is recorded to scrape (D300).
        raise HTTPException(404)
    token = runtime.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HubgateError(
                401,
                "Metrics need 'Authorization: Bearer <HUBGATE_METRICS_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
    async with runtime.sessions() as session:
        jobs = await repository.queued_jobs(session)
        pending, lag = await repository.pending_events(session, PENDING_STATUSES)
    figures = metrics.QueueFigures(jobs=jobs, events_pending=pending, delivery_lag_seconds=lag)
    return Response(metrics.exposition(figures), media_type=metrics.CONTENT_TYPE)
