"""The FastAPI application: routes, error mapping, health and metrics."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anycastlb import __version__
from anycastlb.control.api import (
    routes_audit,
    routes_clusters,
    routes_limits,
    routes_pools,
    routes_pops,
    routes_tenant_objects,
    routes_tenants,
    routes_usage,
)
from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.api.errors import declare_errors, install_error_handlers
from anycastlb.control.api.metrics import ControlMetrics
from anycastlb.control.api.request_id import RequestIdMiddleware
from anycastlb.control.api.request_limits import RequestLimits
from anycastlb.control.api.rotation_sweep import finish_due_rotations
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.service import usage
from anycastlb.control.status_page.routes import router as status_page
from anycastlb.model.base import Frozen

__all__ = ["create_app"]


class _RequestMetrics:
    """Counts requests by route and status and times them (long polls excluded). A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request, which the
    50 PoPs answered after one change would all pay."""

    def __init__(self, app: ASGIApp, metrics: ControlMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.requests.labels(route, str(status)).inc()
            if not route.endswith("/desired"):
                self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class Health(Frozen):
    status: str = Field(description="ok, or what is wrong")
    database: str | None = Field(default=None, description="sqlite or postgresql (when reachable)")
    error: str | None = Field(default=None, description="Why the database is unreachable")


class Alive(Frozen):
    status: str = Field(description="ok")


def create_app(runtime: Runtime) -> FastAPI:
    metrics_ = runtime.metrics

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.notifier.bind(asyncio.get_running_loop())
        sweep = asyncio.create_task(finish_due_rotations(runtime, runtime.rotation_sweep))
        try:
            yield
        finally:
            sweep.cancel()
            await asyncio.gather(sweep, return_exceptions=True)

    app = FastAPI(
        title="anycastlb control plane",
        version=__version__,
        description="Tenants, IP pools, load balancers, and the desired state every PoP follows.",
        lifespan=lifespan,
        # No /docs or /redoc: those pages load their JavaScript from a CDN into a page of the
        # control plane's origin. The schema is served below, to any valid token.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime

    install_error_handlers(app)
    app.add_middleware(RequestLimits, limits=runtime.limits)
    app.add_middleware(RequestIdMiddleware)  # outside the limits: a 413 carries the id too
    app.add_middleware(_RequestMetrics, metrics=metrics_)  # outermost: counts the 413s too

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "The database is unreachable"}},
    )
    def healthz() -> JSONResponse:
        """Liveness and database reachability; needs no token."""
        try:
            runtime.read(lambda session: session.execute(text("SELECT 1")))
        except SQLAlchemyError as error:
            return JSONResponse({"status": "database unreachable", "error": str(error)}, status_code=503)
        return JSONResponse({"status": "ok", "database": runtime.store.dialect})

    @app.get("/livez", tags=["health"], response_model=Alive)
    async def livez() -> Alive:
        """The process answers (on its event loop); touches no database and needs no token. For a
        liveness probe: a database outage fails /healthz, and a restart would not cure it."""
        return Alive(status="ok")

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def metrics(caller: Caller, _rt: Rt) -> Response:
        """Prometheus metrics (admin token)."""
        caller.require_admin()
        metrics_.usage.last_reports(runtime.read(usage.last_reports))  # from the store: every replica alike
        return Response(generate_latest(metrics_.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_schema(_caller: Caller) -> JSONResponse:
        """The OpenAPI schema, to any valid token (admin, tenant or PoP): it lists every route and
        field, which is no secret from a client but no business of an anonymous scanner."""
        return JSONResponse(app.openapi())

    for module in (
        routes_tenants,
        routes_pools,
        routes_tenant_objects,
        routes_pops,
        routes_limits,
        routes_audit,
        routes_usage,
        routes_clusters,
    ):
        app.include_router(module.router)
    app.include_router(status_page)  # /status: the browser's view (not in the OpenAPI schema)
    declare_errors(app)
    return app
