"""Error tracking: with SENTRY_DSN set, unhandled errors and ERROR log lines go to Sentry, scrubbed.

Every event is tagged with the ids of what it is about (request, job, user; see
`luster_app.logging`) and stripped, before it leaves the process, of what must never leave:
request bodies, cookies, headers, query strings (signed URLs), local variables, email
addresses, bearer tokens, JWTs and the configured secrets. Unset, nothing is initialised.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from luster_app.config import Settings
from luster_app.logging import REDACTED, current_log_context, redact, secrets_from_settings

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_KEPT_HEADERS = {"user-agent", "x-request-id"}


def configure_error_tracking(settings: Settings) -> bool:
    """Start the Sentry client for this process if SENTRY_DSN is set; whether it did."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.luster_env,
        send_default_pii=False,
        include_local_variables=False,  # a frame's locals may hold a token, a signed URL or an email
        max_request_body_size="never",
        # Events come from our ERROR log lines only (every 5xx and unhandled error logs one, with
        # the request or job id): the web frameworks' own integrations would report each twice.
        auto_enabling_integrations=False,
        # ERROR lines (every 5xx answer and every failure we log) become events; INFO ones breadcrumbs.
        integrations=[LoggingIntegration(event_level="ERROR")],
        before_send=functools.partial(scrub_event, secrets=secrets_from_settings(settings)),
    )
    return True


def scrub_event(event: dict[str, Any], _hint: object = None, *, secrets: list[str]) -> dict[str, Any]:
    """The event tagged with the current ids, without anything secret or personal."""
    event.setdefault("tags", {}).update(current_log_context())
    request = event.get("request")
    if isinstance(request, dict):
        url = urlsplit(str(request.get("url", "")))
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": urlunsplit((url.scheme, url.netloc, url.path, "", "")),
            "headers": {k: v for k, v in headers.items() if str(k).lower() in _KEPT_HEADERS},
        }
    user = event.pop("user", None)
    if isinstance(user, dict) and user.get("id"):
        event["user"] = {"id": user["id"]}
    return _scrubbed(event, sorted(set(secrets), key=len, reverse=True))


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub(REDACTED, redact(value, secrets))
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(item, secrets) for item in value]
    return value
