"""Supabase Auth: Supabase emails the magic link; the server confirms it and verifies tokens by JWKS.

The project's "Magic Link" and "Confirm signup" email templates must send users to the app's
confirm page with a token hash, e.g.
`{{ .SiteURL }}/auth/confirm?token_hash={{ .TokenHash }}&type=magiclink` (a URL fragment
never reaches the server, so the implicit flow cannot work here). Site URL = APP_URL, and
`{APP_URL}/auth/confirm**` in the allowed redirect URLs. To come back to the page the user was
on from another browser too, use `{{ .RedirectTo }}&token_hash={{ .TokenHash }}&type=magiclink`
(RedirectTo carries `?next=`); otherwise the return-to cookie covers the same browser. In the
"Confirm signup" template (a first sign-in) use `type=email`, which GoTrue accepts for both.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from luster_app import routes
from luster_app.auth.base import AUDIENCE, LEEWAY_SECONDS, AuthConfigError, AuthError, AuthSession, AuthUnavailable, Identity
from luster_app.auth.jwks import COOLDOWN_SECONDS, JwksCache
from luster_app.config import Settings
from luster_app.services.errors import RateLimited

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
LINK_TYPES = ("magiclink", "email", "signup")
HTTP_TIMEOUT_SECONDS = 10.0
# No cache of refresh answers: a rotated refresh token presented again must reach Supabase, whose
# reuse detection revokes the session (a thief's copy then dies with it). Two tabs refreshing at the
# same moment are Supabase's reuse interval's business (GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL,
# 10 s by default): it gives the second caller the session's current token.
INVALID_SESSION = "invalid or expired session"


class SupabaseAuth:
    """Supabase Auth over its REST API (GoTrue), with the project's anon key."""

    name = "supabase"

    def __init__(
        self,
        *,
        settings: Settings,
        http: httpx.Client | None = None,
        jwks_cooldown_seconds: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.supabase_anon_key:
            raise AuthConfigError("SUPABASE_URL is set but SUPABASE_ANON_KEY is empty: set both to use Supabase Auth.")
        self.settings = settings
        self.issuer = f"{settings.supabase_url}/auth/v1"
        self._http = http or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)
        self.jwks = JwksCache(
            url=settings.supabase_jwks_url or f"{self.issuer}/.well-known/jwks.json",
            http=self._http,
            cooldown_seconds=jwks_cooldown_seconds,
            clock=clock,
        )

    # --- tokens ---

    def verify_access_token(self, token: str) -> Identity:
        """Verify a Supabase access token: published asymmetric key, audience, issuer, expiry, subject."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(INVALID_SESSION) from exc
        algorithm = header.get("alg")
        if algorithm in ASYMMETRIC_ALGORITHMS:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError(INVALID_SESSION)
            published = self.jwks.key(kid)
            if published.algorithm_name != algorithm:
                raise AuthError(INVALID_SESSION)
            key: Any = published.key
        elif algorithm == "HS256" and self.settings.supabase_jwt_secret:
            key = self.settings.supabase_jwt_secret  # the legacy shared secret, only when configured
        else:
            raise AuthError(INVALID_SESSION)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
            user_id = uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise AuthError(INVALID_SESSION) from exc
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("is_anonymous"):
            raise AuthError("sign in with your email address")
        return Identity(user_id=user_id, email=email.strip().lower())

    # --- REST calls ---

    def _post(self, path: str, *, json: dict[str, Any], params: dict[str, str] | None = None,
              bearer: str | None = None) -> httpx.Response:
        headers = {"apikey": self.settings.supabase_anon_key}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            response = self._http.post(f"{self.issuer}{path}", json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("Supabase Auth %s failed: %s", path, exc.__class__.__name__)
            raise AuthUnavailable("Sign-in is unavailable right now; try again in a minute.") from exc
        if response.status_code == 429:
            raise RateLimited("Too many sign-in attempts; wait a minute and try again.", retry_after=60)
        if response.status_code >= 500 or (response.status_code == 401 and not bearer):
            # 401 from the gateway means our anon key is wrong: an operator's problem, not the user's.
            log.error("Supabase Auth %s answered %s (%s)", path, response.status_code, _error_code(response))
            raise AuthUnavailable("Sign-in is unavailable right now; try again in a minute.")
        return response

    def send_magic_link(self, *, email: str, next_path: str) -> None:
        """Ask Supabase to email a link (creating the account if new); other 4xx answers look the same to users."""
        response = self._post(
            "/otp",
            json={"email": email, "create_user": True},
            params={"redirect_to": f"{self.settings.app_url}{routes.CONFIRM}?{urlencode({'next': next_path})}"},
        )
        if response.is_error:
            # Same answer for every address, so the response cannot tell who has an account.
            log.warning("Supabase Auth /otp answered %s (%s)", response.status_code, _error_code(response))

    def link_email(self, *, token: str, link_type: str = "magiclink") -> None:
        """GoTrue tells a link's email only by using it (POST /verify), so the check comes after."""
        return None

    def confirm_magic_link(self, *, token: str, link_type: str = "magiclink") -> AuthSession:
        """Exchange the email's token hash for a session (POST /verify)."""
        if not token or link_type not in LINK_TYPES:
            raise AuthError("This sign-in link is invalid or has expired. Ask for a new one.")
        response = self._post("/verify", json={"type": link_type, "token_hash": token})
        if response.is_error:
            raise AuthError("This sign-in link is invalid or has expired. Ask for a new one.")
        return self._session_from(response)

    def refresh_session(self, *, refresh_token: str) -> AuthSession:
        """Rotate the refresh token for new tokens (POST /token?grant_type=refresh_token)."""
        if not refresh_token:
            raise AuthError("Your session has ended; sign in again.")
        response = self._post("/token", json={"refresh_token": refresh_token}, params={"grant_type": "refresh_token"})
        if response.is_error:
            raise AuthError("Your session has ended; sign in again.")
        return self._session_from(response)

    def sign_out(self, *, access_token: str, everywhere: bool = False) -> None:
        """Revoke this session's refresh tokens at Supabase (best effort: the cookie goes anyway)."""
        try:
            self.verify_access_token(access_token)
        except AuthError:
            return  # nothing to revoke with an invalid token
        try:
            response = self._post("/logout", json={}, params={"scope": "global" if everywhere else "local"}, bearer=access_token)
        except AuthUnavailable:
            log.warning("Supabase Auth did not confirm the sign-out")
            return
        if response.is_error:
            log.warning("Supabase Auth /logout answered %s (%s)", response.status_code, _error_code(response))

    def _session_from(self, response: httpx.Response) -> AuthSession:
        try:
            body = response.json()
            access_token, refresh_token = str(body["access_token"]), str(body["refresh_token"])
            expires_in = int(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthUnavailable("Sign-in is unavailable right now; try again in a minute.") from exc
        # Never trust a token because it came back from the server: it must verify like any other.
        identity = self.verify_access_token(access_token)
        return AuthSession(
            access_token=access_token, refresh_token=refresh_token, expires_in=expires_in, identity=identity
        )


def _error_code(response: httpx.Response) -> str:
    """Supabase's error code for logs; never the body, which may echo what the user sent."""
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    if isinstance(body, dict):
        return str(body.get("error_code") or body.get("error") or body.get("code") or "unknown")
    return "unknown"
