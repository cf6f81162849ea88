"""Request ids: taken from X-Request-ID (or made), echoed back, and on every log line of the request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luster_app.logging import log_context

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept only if it is short and plain, so a client cannot inject text into logs.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()

access_log = logging.getLogger("luster.access")


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == _HEADER_KEY:
            candidate = value.decode("latin-1").strip()
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestIdMiddleware:
    """Pure ASGI middleware (websockets pass through untouched) that ties logs to one request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, (_HEADER_KEY, request_id.encode())]}
            await send(message)

        started = time.perf_counter()
        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                access_log.exception("unhandled error in %s %s", scope["method"], scope["path"])
                raise
            finally:
                # The path only: query strings may carry signatures. Static files of the UI stay quiet.
                level = logging.INFO if scope["path"].startswith("/api") else logging.DEBUG
                elapsed_ms = (time.perf_counter() - started) * 1000
                access_log.log(level, "%s %s %s %.0fms", scope["method"], scope["path"], status, elapsed_ms)
