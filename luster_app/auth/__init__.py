"""Sign-in: the auth provider interface, local magic links and Supabase Auth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luster_app.auth.base import AuthConfigError, AuthError, AuthProvider, AuthSession, AuthUnavailable, Identity

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from luster_app.config import Settings

__all__ = ["AuthConfigError", "AuthError", "AuthProvider", "AuthSession", "AuthUnavailable", "Identity", "build_auth"]


def build_auth(settings: Settings, db: Engine) -> AuthProvider:
    """Supabase Auth when SUPABASE_URL is set, else the local provider (which refuses production)."""
    if settings.uses_supabase:
        from luster_app.auth.supabase import SupabaseAuth

        return SupabaseAuth(settings=settings)
    from luster_app.auth.local import LocalAuth

    return LocalAuth(settings=settings, db=db)
