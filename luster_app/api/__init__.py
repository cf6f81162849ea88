"""The REST API under /api: one FastAPI app, mounted on the Reflex backend."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from luster_app.api.request_id import RequestIdMiddleware
from luster_app.api.security_headers import SecurityHeadersMiddleware
from luster_app.config import get_settings
from luster_app.context import AppContext
from luster_app.services.errors import RateLimited, ServiceError


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
    from luster_app.api import admin, auth, billing, downloads, files, health, jobs, me, presets, shoots, uploads

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

    @api.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    routers = (health, me, auth, shoots, uploads, files, presets, billing, jobs, downloads, admin)
    for module in routers:
        api.include_router(module.router, prefix="/api")
    return api
