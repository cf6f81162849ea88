"""The embedded auth provider: one-time links issued by the app, ES256 session tokens it signs itself."""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import jwt
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from luster_app import routes
from luster_app.auth.base import AUDIENCE, LEEWAY_SECONDS, AuthConfigError, AuthError, AuthSession, Identity
from luster_app.auth.keys import load_or_create_signing_key
from luster_app.auth.mail import send_sign_in_link
from luster_app.config import Settings
from luster_app.db import new_session
from luster_app.models import MagicLink, utcnow
from luster_app.services.users import ensure_user_for_email

ISSUER = "luster-local"
# Refresh tokens are signed like access tokens but for another audience, so neither passes for the other.
REFRESH_AUDIENCE = "luster-refresh"
LINK_TTL = timedelta(minutes=30)
INVALID_LINK = "This sign-in link is invalid, expired or already used. Ask for a new one."


def hash_link_token(token: str) -> str:
    """What the database keeps of a link token: its SHA-256, so a leaked table signs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


class LocalAuth:
    """Links and sessions for a single operator's machine; never for production."""

    name = "local"

    def __init__(self, *, settings: Settings, db: Engine) -> None:
        if settings.is_production:
            raise AuthConfigError(
                "The embedded auth provider refuses LUSTER_ENV=production: its links and keys are for one "
                "operator's machine. Set SUPABASE_URL and SUPABASE_ANON_KEY to sign in with Supabase Auth."
            )
        self.settings = settings
        self.db = db

    @functools.cached_property
    def _private_key(self):  # noqa: ANN202
        return load_or_create_signing_key(self.settings.luster_data_dir / "auth" / "session_key.pem")

    # --- tokens ---

    def issue_access_token(self, *, user_id: uuid.UUID, email: str) -> str:
        """A signed session JWT for this user."""
        return self._sign(user_id=user_id, email=email, audience=AUDIENCE, ttl=self.settings.session_ttl_seconds)

    def verify_access_token(self, token: str) -> Identity:
        """The identity behind a session token this provider signed, or AuthError."""
        return self._verify(token, audience=AUDIENCE, message="invalid or expired session")

    def _sign(self, *, user_id: uuid.UUID, email: str, audience: str, ttl: int) -> str:
        now = utcnow()
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": str(user_id),
            "email": email,
            "iat": now,
            "exp": now + timedelta(seconds=ttl),
        }
        return jwt.encode(claims, self._private_key, algorithm="ES256")

    def _verify(self, token: str, *, audience: str, message: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._private_key.public_key(),
                algorithms=["ES256"],
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            return Identity(user_id=uuid.UUID(claims["sub"]), email=str(claims.get("email", "")))
        except (jwt.PyJWTError, ValueError) as exc:
            raise AuthError(message) from exc

    def _session_for(self, *, user_id: uuid.UUID, email: str, next_path: str | None = None) -> AuthSession:
        return AuthSession(
            access_token=self.issue_access_token(user_id=user_id, email=email),
            refresh_token=self._sign(
                user_id=user_id, email=email, audience=REFRESH_AUDIENCE, ttl=self.settings.refresh_ttl_seconds
            ),
            expires_in=self.settings.session_ttl_seconds,
            identity=Identity(user_id=user_id, email=email),
            next_path=next_path,
        )

    # --- magic links ---

    def send_magic_link(self, *, email: str, next_path: str) -> None:
        """Store a new link's hash, then email (or, in development, log) the link."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with new_session(self.db) as session:
            session.add(
                MagicLink(email=email, token_hash=hash_link_token(token), redirect_to=next_path, expires_at=now + LINK_TTL)
            )
            session.commit()
        link = f"{self.settings.app_url}{routes.CONFIRM}?{urlencode({'token': token, 'next': next_path})}"
        send_sign_in_link(settings=self.settings, to=email, link=link, ttl_minutes=int(LINK_TTL.total_seconds() // 60))

    def link_email(self, *, token: str, link_type: str = "magiclink") -> str:
        """Whom a still-usable link signs in (the confirm page names it before the click)."""
        with new_session(self.db) as session:
            email = session.execute(
                select(MagicLink.email).where(
                    MagicLink.token_hash == hash_link_token(token or ""),
                    MagicLink.used_at.is_(None),
                    MagicLink.expires_at > utcnow(),
                )
            ).scalar_one_or_none()
        if email is None:
            raise AuthError(INVALID_LINK)
        return email

    def confirm_magic_link(self, *, token: str, link_type: str = "magiclink") -> AuthSession:
        """Use up the link (one conditional UPDATE, so two clicks cannot both win) and sign its owner in."""
        if not token:
            raise AuthError(INVALID_LINK)
        now = utcnow()
        with new_session(self.db) as session:
            used = session.execute(
                update(MagicLink)
                .where(
                    MagicLink.token_hash == hash_link_token(token),
                    MagicLink.used_at.is_(None),
                    MagicLink.expires_at > now,
                )
                .values(used_at=now)
                .returning(MagicLink.email, MagicLink.redirect_to)
            ).first()
            if used is None:
                raise AuthError(INVALID_LINK)
            session.commit()
            user = ensure_user_for_email(session=session, email=used.email)
        return self._session_for(user_id=user.id, email=user.email, next_path=used.redirect_to)

    def refresh_session(self, *, refresh_token: str) -> AuthSession:
        """New tokens for a valid refresh token of this provider."""
        identity = self._verify(refresh_token, audience=REFRESH_AUDIENCE, message="Your session has ended; sign in again.")
        return self._session_for(user_id=identity.user_id, email=identity.email)

    def sign_out(self, *, access_token: str, everywhere: bool = False) -> None:
        """Nothing to revoke: local sessions live only in the client's cookie (a closed account's
        tokens are refused by `ensure_user`)."""
