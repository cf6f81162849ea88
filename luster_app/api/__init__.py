"""The REST API under /api: one FastAPI app, mounted on the Reflex backend."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from luster_app.api.metrics import MetricsMiddleware
from luster_app.api.request_id import RequestIdMiddleware
from luster_app.api.security_headers import SecurityHeadersMiddleware
from luster_app.config import get_settings
from luster_app.context import AppContext
from luster_app.services.errors import RateLimited, ServiceError

log = logging.getLogger("luster.api")


class _LusterAPI(FastAPI):
    """FastAPI whose outermost layer adds the security headers, so the 500s that Starlette's
    error middleware writes (outside every `add_middleware` layer) carry them too."""

    frontend_dir: Path | None = None

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.state.context.settings if self.state.context else get_settings()
        return SecurityHeadersMiddleware(super().build_middleware_stack(), settings=settings,
                                         frontend_dir=self.frontend_dir)


def create_api(context: AppContext | None = None, *, frontend_dir: Path | None = None) -> FastAPI:
    """The API app; `context` None means the process default, built on the first request.

    `frontend_dir` is the compiled UI this backend serves (its inline scripts go into the pages' CSP)."""
    from luster_app.api import (
        admin, auth, billing, brackets, downloads, files, health, jobs, me, metrics, presets, sharing, shoots, uploads,
    )

    api = _LusterAPI(
        title="Luster API",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    api.state.context = context
    api.frontend_dir = frontend_dir
    api.add_middleware(RequestIdMiddleware)
    templates: dict[int, str] = {}  # id(route) → template (routes are not hashable)
    api.add_middleware(MetricsMiddleware, templates=templates)

    @api.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        _log_server_error(request, exc.status_code, exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        _log_server_error(request, exc.status_code, exc)
        return await http_exception_handler(request, exc)

    routers = (health, me, auth, shoots, sharing, brackets, uploads, files, presets, billing, jobs, downloads, admin)
    for module in routers:
        api.include_router(module.router, prefix="/api")
        templates.update({id(route): "/api" + route.path for route in module.router.routes if hasattr(route, "path")})
    # At the root, where scrapers look; the app serves it before the Reflex pages it mounts.
    api.include_router(metrics.router)
    api.include_router(sharing.public_router)  # the public disclosure pages, at /disclosure/{token}
    return api


def _log_server_error(request: Request, status: int, exc: Exception) -> None:
    """A 5xx answer is our failure: log it with its traceback (what caused it, if anything did),
    so the operator (and error tracking) sees it, tied to the request id by the log context."""
    if status >= 500:
        cause = exc.__cause__ or exc
        detail = getattr(exc, "detail", exc)
        log.error("%s %s answered %d: %s", request.method, request.url.path, status, detail,
                  exc_info=(type(cause), cause, cause.__traceback__))
