"""The embedded auth provider: the app signs its own ES256 session tokens."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

import jwt
from sqlalchemy.engine import Engine

from luster_app.auth.base import AuthError, Identity
from luster_app.auth.keys import load_or_create_signing_key
from luster_app.config import Settings
from luster_app.models import utcnow

ISSUER = "luster-local"
AUDIENCE = "authenticated"
LEEWAY_SECONDS = 30


class LocalAuth:
    """Sessions signed with a key from the data dir; never for production."""

    name = "local"

    def __init__(self, *, settings: Settings, db: Engine) -> None:
        self.settings = settings
        self.db = db

    @functools.cached_property
    def _private_key(self):  # noqa: ANN202
        return load_or_create_signing_key(self.settings.luster_data_dir / "auth" / "session_key.pem")

    def issue_access_token(self, *, user_id: uuid.UUID, email: str) -> str:
        """A signed session JWT for this user."""
        now = utcnow()
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "email": email,
            "iat": now,
            "exp": now + timedelta(seconds=self.settings.session_ttl_seconds),
        }
        return jwt.encode(claims, self._private_key, algorithm="ES256")

    def verify_access_token(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._private_key.public_key(),
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            return Identity(user_id=uuid.UUID(claims["sub"]), email=str(claims.get("email", "")))
        except (jwt.PyJWTError, ValueError) as exc:
            raise AuthError("invalid or expired session") from exc
