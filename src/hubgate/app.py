"""The application factory: routers, middleware, and the lifespan that owns the runtime."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from hubgate import console, errors_http, openapi_doc
from hubgate.cors import CorsMiddleware
from hubgate.elements.endpoints import router as elements_router
from hubgate.events import service as events_service
from hubgate.events.endpoints import router as events_router
from hubgate.events.fastintake import VendorIntake
from hubgate.formulas.endpoints import router as formulas_router
from hubgate.hub.endpoints import router as hub_router
from hubgate.hub.fastpath import HubFastPath
from hubgate.hub.logs import AuditMiddleware
from hubgate.hub.state import open_hub
from hubgate.instances import changes as instance_changes
from hubgate.instances.endpoints import router as instances_router
from hubgate.middleware import RequestIdMiddleware
from hubgate.observability import logs, metrics, traces
from hubgate.observability.endpoints import router as operations_router
from hubgate.observability.middleware import RequestMetrics
from hubgate.runtime import open_runtime
from hubgate.settings import Settings, reveal
from hubgate.transformations.endpoints import router as transformations_router

API_PREFIX = "/elements/api-v2"
# The collector's young generation, in tracked objects allocated and not yet freed (Python's
# default is 700). Under load, the requests in flight hold thousands of young objects between
# them (a vendor page parsed, normalized and written): at 700 the collector ran every dozen hub
# calls, found almost nothing to free, and promoted the live objects until a full collection
# (15-20 ms each) came every second or so, some 35 us of a hub call's CPU in all (D500).
# Above what the requests in flight hold, it runs when garbage, not traffic, builds up.
GC_YOUNG_THRESHOLD = 10_000


class HubgateApp(FastAPI):
    """FastAPI, with hub calls answered before its stack (hub.fastpath) when a path is set."""

    hot_path: HubFastPath | None = None
    # Vendor webhooks, answered the same way (events.fastintake).
    intake_path: VendorIntake | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_path
        if hot is not None and scope["type"] == "http":
            scope["app"] = self
            if hot.takes(scope):
                await hot.answer(scope, receive, send)
                return
            intake = self.intake_path
            if intake is not None and intake.takes(scope):
                await intake.answer(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, database_url: str) -> FastAPI:
    logs.configure(settings)
    traces.configure(settings)
    metrics.configure(settings)
    # Pollers are born and dropped in the transaction that writes the instance (D131).
    instance_changes.on_saved(events_service.instance_saved)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await open_runtime(settings, database_url)
        app.state.runtime = runtime
        app.state.hub = await open_hub(runtime, database_url)
        # Everything built so far lives as long as the process: keeping it out of the
        # collector's generations shortens the pauses that showed as tail latency under load.
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            await app.state.hub.close()
            await runtime.close()
            traces.shutdown()

    app = HubgateApp(
        title="Hubgate",
        version="0.1.0",
        description="An Open Connectors-compatible integration hub.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(instances_router)
    api.include_router(elements_router)
    api.include_router(events_router)
    api.include_router(transformations_router)
    api.include_router(formulas_router)
    # After the catalog, so that /hubs/{key}/elements stays the catalog's.
    api.include_router(hub_router)
    app.include_router(api)
    app.include_router(operations_router)
    errors_http.install(app)
    openapi_doc.install(app, prefix=API_PREFIX)
    console.install(app, api_prefix=API_PREFIX)
    # Around every answer, outermost first; hub.fastpath does the same for hub calls in one.
    layers = [
        Middleware(CorsMiddleware, origins=settings.cors_origins),
        Middleware(RequestIdMiddleware, max_body_bytes=settings.max_body_bytes),
        Middleware(AuditMiddleware),
        Middleware(RequestMetrics, prefix=API_PREFIX),
    ]
    app.user_middleware = [*layers, Middleware(errors_http.UnexpectedErrors)]
    app.hot_path = HubFastPath(
        prefix=API_PREFIX,
        cors_origins=settings.cors_origins,
        max_body_bytes=settings.max_body_bytes,
    )
    app.intake_path = VendorIntake(prefix=API_PREFIX, layers=layers)
    return app


def app_from_environment() -> FastAPI:
    """The app of one ``hubgate serve --workers N`` process, configured by ``HUBGATE_*``."""
    settings = Settings()
    url = reveal(settings.database_url)
    if not url:
        raise RuntimeError("HUBGATE_DATABASE_URL must be set for worker processes")
    return create_app(settings, database_url=url)
