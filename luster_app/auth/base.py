"""What every auth provider offers the API, the web UI and the CLI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


class AuthError(Exception):
    """A token or link that must not sign anybody in; the message is safe to show."""


@dataclass(frozen=True)
class Identity:
    """Who a verified access token speaks for."""

    user_id: uuid.UUID
    email: str


class AuthProvider(Protocol):
    name: str

    def verify_access_token(self, token: str) -> Identity:
        """The identity behind a bearer token, or AuthError."""
        ...
