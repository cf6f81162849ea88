"""Security headers on every HTTP answer of the app: API, errors, signed files and the UI's pages.

The middleware wraps the whole backend (see `create_api`), so pages served from the compiled
frontend get them too. Three Content-Security-Policies:

- the UI's pages: scripts only from this origin plus the inline scripts of the compiled pages,
  allowed one by one by their SHA-256 (read from the build, never from a response, so an injected
  script never matches). `'unsafe-eval'` stays because Reflex runs `rx.call_script` (the upload
  queue, the checkout redirect) with `eval`. Styles need `'unsafe-inline'`: emotion writes `<style>`
  tags at runtime and Radix sets style attributes. Images and uploads may go to the S3 origin.
- the API's own answers (JSON, files, the local checkout page): no script at all.
- the OpenAPI docs page, which loads Swagger UI from its CDN.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luster_app.config import Settings

# Paths whose URL carries a secret (a sign-in link's token, a signed download): no Referer at all.
NO_REFERRER_PREFIXES = ("/auth/confirm", "/api/downloads", "/api/files/", "/disclosure/")
HSTS = "max-age=31536000; includeSubDomains"
API_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
DOCS_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def inline_script_hashes(frontend_dir: Path | None) -> list[str]:
    """CSP sources for every distinct inline script of the compiled pages (about 20)."""
    if frontend_dir is None or not frontend_dir.is_dir():
        return []
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(match.group(1)).digest()).decode() + "'"
        for page in frontend_dir.rglob("*.html")
        for match in _INLINE_SCRIPT.finditer(page.read_bytes())
    }
    return sorted(hashes)


def storage_origins(settings: Settings) -> list[str]:
    """Where the browser fetches photos and sends uploads, besides this origin."""
    if settings.s3_endpoint:
        parts = urlsplit(settings.s3_endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    if settings.s3_bucket:  # AWS S3 picks a virtual-hosted name for the bucket
        origins = [f"https://{settings.s3_bucket}.s3.amazonaws.com"]
        if settings.s3_region and settings.s3_region != "auto":
            origins.append(f"https://{settings.s3_bucket}.s3.{settings.s3_region}.amazonaws.com")
        return origins
    return []


def page_policy(settings: Settings, script_hashes: list[str]) -> str:
    app = urlsplit(settings.app_url)
    websocket = f"{'wss' if app.scheme == 'https' else 'ws'}://{app.netloc}"
    storage = " ".join(storage_origins(settings))
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self' 'unsafe-eval'", *script_hashes]),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {storage}".rstrip(),
        f"connect-src 'self' {websocket} {storage}".rstrip(),
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers to each HTTP answer (a header the route set itself is kept)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, frontend_dir: Path | None = None) -> None:
        self.app = app
        self.settings = settings
        self.frontend_dir = frontend_dir
        self._page_policy: tuple[float, str] | None = None  # (build's mtime, policy)

    def _current_page_policy(self) -> str:
        # `reflex run` may build the pages after the backend starts; a new build means new hashes.
        marker = self.frontend_dir / "index.html" if self.frontend_dir else None
        mtime = marker.stat().st_mtime if marker is not None and marker.exists() else 0.0
        if self._page_policy is None or self._page_policy[0] != mtime:
            self._page_policy = (mtime, page_policy(self.settings, inline_script_hashes(self.frontend_dir)))
        return self._page_policy[1]

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/api/docs"):
            policy = DOCS_POLICY
        elif path == "/api" or path.startswith("/api/"):
            policy = API_POLICY
        else:
            policy = self._current_page_policy()
        headers = {
            "Content-Security-Policy": policy,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer" if path.startswith(NO_REFERRER_PREFIXES) else "strict-origin-when-cross-origin",
        }
        if self.settings.is_production:
            headers["Strict-Transport-Security"] = HSTS
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                added = [(k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
