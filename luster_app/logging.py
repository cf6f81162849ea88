"""Structured logs: JSON lines in production, readable text elsewhere, never a secret.

Every record carries the ids of what it is about (request, job, user) from a context variable,
so a line written deep inside a service still says which request or job it belongs to. A
redacting filter on the handler removes bearer tokens, JWTs, signed-URL query strings and the
configured secrets from the message and from tracebacks before anything is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from luster_app.config import Settings

CONTEXT_FIELDS = ("request_id", "job_id", "user_id")
REDACTED = "[REDACTED]"

# One mutable dict per request or job: copies of a context (FastAPI's threadpool, asyncio tasks)
# share it, so an id bound inside a dependency is seen by the handler and the access log alike.
_log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("luster_log_context", default=None)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[dict[str, str]]:
    """Add ids (request_id, job_id, user_id) to every record logged inside the block."""
    merged = {**(_log_context.get() or {}), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _log_context.set(merged)
    try:
        yield merged
    finally:
        _log_context.reset(token)


def bind_log_context(**fields: object) -> None:
    """Add ids to the current request's or job's context (seen by everything sharing it)."""
    current = _log_context.get()
    if current is None:
        current = {}
        _log_context.set(current)
    current.update({k: str(v) for k, v in fields.items() if v is not None})


def current_log_context() -> dict[str, str]:
    return dict(_log_context.get() or {})


# --- redaction ---

_SIGNED_QUERY_PARAMS = r"(?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|sig|token|token_hash|access_token|refresh_token|apikey)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A URL whose query string signs or authorises it: drop the whole query string.
    (re.compile(rf"(\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]+)\?[^\s\"'<>]*?\b{_SIGNED_QUERY_PARAMS}=[^\s\"'<>]*", re.I),
     rf"\1?{REDACTED}"),
    # The same parameters outside a full URL (a bare query string, a form body).
    (re.compile(rf"\b({_SIGNED_QUERY_PARAMS})=[^&\s\"'<>]+", re.I), rf"\1={REDACTED}"),
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.I), rf"\1{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9+/=]+|\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    # A shared disclosure page's token is its capability (luster_app.services.sharing.PAGE_PREFIX).
    (re.compile(r"(/disclosure/)[A-Za-z0-9_-]{20,}"), rf"\1{REDACTED}"),
    # Passwords in connection URLs (postgresql://user:password@host).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", re.I), rf"\1{REDACTED}@"),
)
# Shorter configured values would redact ordinary words.
_MIN_SECRET_LENGTH = 6
_SECRET_SETTINGS = ("supabase_anon_key", "supabase_jwt_secret", "s3_access_key_id", "s3_secret_access_key",
                    "openai_api_key", "stripe_secret_key", "stripe_webhook_secret", "metrics_token")
_URL_SETTINGS = ("database_url", "smtp_url", "redis_url")


def secrets_from_settings(settings: Settings) -> list[str]:
    """The configured secret values, and the passwords inside configured URLs."""
    values = [getattr(settings, name) for name in _SECRET_SETTINGS]
    for name in _URL_SETTINGS:
        with contextlib.suppress(ValueError):
            values.append(urlsplit(getattr(settings, name)).password or "")
    return [v for v in values if len(v) >= _MIN_SECRET_LENGTH]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with tokens, JWTs, signed URLs and the given secret values replaced by [REDACTED]."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback without secrets, tokens or signed URLs."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is removed whole.
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  # a bad format string must not crash the caller
            message = f"{record.msg!s} (log arguments did not match the format)"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        # exc_info stays for error tracking, which scrubs events itself (luster_app.error_tracking):
        # formatters print the redacted exc_text above rather than render exc_info again.
        return True


class ContextFilter(logging.Filter):
    """Copies the current request/job/user ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _log_context.get() or {}
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids that apply, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: value for name in CONTEXT_FIELDS if (value := getattr(record, name, None))})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request_id=… job_id=…] message` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None)))
        record.ids = f" [{ids}]" if ids else ""
        return super().format(record)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a record is emitted (test runners and daemons swap it)."""

    @property
    def stream(self) -> object:  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def build_handler(settings: Settings, stream: object = None) -> logging.Handler:
    """A handler (stdout unless `stream`) with the format for LUSTER_ENV, ids and redaction attached."""
    handler = logging.StreamHandler(stream) if stream is not None else _StdoutHandler()
    handler.setFormatter(JsonFormatter() if settings.is_production else TextFormatter())
    handler.addFilter(RedactingFilter(secrets_from_settings(settings)))
    handler.addFilter(ContextFilter())
    handler._luster = True  # type: ignore[attr-defined]  # marks ours, so a second call replaces it
    return handler


def configure_logging(settings: Settings, stream: object = None) -> logging.Handler:
    """Route the root logger through one Luster handler at LOG_LEVEL; safe to call again."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_luster", False)]:
        root.removeHandler(handler)
    handler = build_handler(settings, stream)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return handler
