"""Keep tokens out of test output: pytest prints `<redacted>` where a token would appear."""

from __future__ import annotations

from typing import Any

TOKEN_FIELDS = ("access_token", "refresh_token")


class Redacted(str):
    """A str that works as its value everywhere but shows as `<redacted>` in reprs and assertion output."""

    def __repr__(self) -> str:
        return "<redacted>"


def bearer(token: str) -> dict[str, str]:
    """An Authorization header whose value never shows in a failing assertion."""
    return {"Authorization": Redacted(f"Bearer {token}")}


def redact_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """An API answer with its tokens redacted for display (still usable as values)."""
    return {k: Redacted(v) if k in TOKEN_FIELDS and isinstance(v, str) else v for k, v in body.items()}
