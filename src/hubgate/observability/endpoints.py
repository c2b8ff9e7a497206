"""Operators' routes at the server's root, outside the Open Connectors API (D65, D232)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from hubgate.deps import get_runtime
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
