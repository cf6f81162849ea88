"""The REST API under /api: one FastAPI app, mounted on the Reflex backend."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from luster_app.api.metrics import MetricsMiddleware
from luster_app.api.request_id import RequestIdMiddleware
from luster_app.context import AppContext
from luster_app.services.errors import RateLimited, ServiceError


def create_api(context: AppContext | None = None) -> FastAPI:
    """The API app; `context` None means the process default, built on the first request."""
    from luster_app.api import admin, auth, billing, downloads, files, health, jobs, me, metrics, presets, shoots, uploads

    api = FastAPI(
        title="Luster API",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    api.state.context = context
    api.add_middleware(RequestIdMiddleware)
    templates: dict[int, str] = {}  # id(route) → template (routes are not hashable)
    api.add_middleware(MetricsMiddleware, templates=templates)

    @api.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    routers = (health, me, auth, shoots, uploads, files, presets, billing, jobs, downloads, admin)
    for module in routers:
        api.include_router(module.router, prefix="/api")
        templates.update({id(route): "/api" + route.path for route in module.router.routes if hasattr(route, "path")})
    # At the root, where scrapers look; the app serves it before the Reflex pages it mounts.
    api.include_router(metrics.router)
    return api
