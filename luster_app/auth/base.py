"""What every auth provider offers the API, the web UI and the CLI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from luster_app.services.errors import ServiceError

# Clock skew tolerated on `exp`, `iat` and `nbf`.
LEEWAY_SECONDS = 30
AUDIENCE = "authenticated"


class AuthError(ServiceError):
    """A token or link that must not sign anybody in; the message is safe to show."""

    status_code = 401


class AuthUnavailable(ServiceError):
    """The sign-in service cannot be reached or refuses our configuration; try again later."""

    status_code = 503


class AuthConfigError(RuntimeError):
    """The auth settings cannot work (for example the local provider under LUSTER_ENV=production)."""


@dataclass(frozen=True)
class Identity:
    """Who a verified access token speaks for."""

    user_id: uuid.UUID
    email: str


@dataclass(frozen=True)
class AuthSession:
    """What a confirmed link or a refresh gives a client: tokens and the identity they carry."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    identity: Identity
    # Where the link asked to land after sign-in, when the provider remembers it.
    next_path: str | None = None


class AuthProvider(Protocol):
    """Magic links in, session tokens out; the API and the web UI verify through it."""

    name: str

    def verify_access_token(self, token: str) -> Identity:
        """The identity behind a bearer token, or AuthError."""
        ...

    def send_magic_link(self, *, email: str, next_path: str) -> None:
        """Email a one-time sign-in link to `email` (it need not have an account yet)."""
        ...

    def link_email(self, *, token: str, link_type: str) -> str | None:
        """The email a link would sign in, without using it; None when the provider cannot tell
        before use (Supabase); AuthError when the link is invalid, expired or used."""
        ...

    def confirm_magic_link(self, *, token: str, link_type: str) -> AuthSession:
        """Exchange the token from a link for a session, once; AuthError when invalid or used."""
        ...

    def refresh_session(self, *, refresh_token: str) -> AuthSession:
        """A fresh session for a refresh token; AuthError when it is no longer valid."""
        ...

    def sign_out(self, *, access_token: str, everywhere: bool = False) -> None:
        """End the session server-side where the provider keeps one (best effort); `everywhere`:
        every session of the user, on every device (account closure)."""
        ...
