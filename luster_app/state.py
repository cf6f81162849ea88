"""The signed-in user, shared by every page. The session lives in cookies and is verified on every use.

How pages use it: a page's state subclasses `AuthState`, and every event handler that reads or
changes user data starts by asking for the verified user (a page redirect alone protects nothing):

    class ShootsState(AuthState):
        shoots: list[dict] = []

        @rx.event
        def load(self):
            user = self._signed_in_user()        # verifies the cookie's token, refreshing it if needed
            if user is None:
                return self._sign_in_first()     # to /login?next=<this page>; back here after sign-in
            with app_context().session() as session:
                self.shoots = [...]              # call services with `user`, never trust ids from the client

    app.add_page(shoots_page, route=routes.SHOOTS, on_load=ShootsState.load)

A page with nothing to load can use `on_load=AuthState.require_sign_in`; a public page that shows
who is signed in, `on_load=AuthState.load_user`. `AuthState.signed_in` and `AuthState.email` are
for display (the navbar); never authorize with them. Long calls belong in
`async` handlers that run services with `asyncio.to_thread`, as the login and confirm pages do.
"""

from __future__ import annotations

import time

import jwt
import reflex as rx
from reflex.event import EventSpec

from luster_app import routes
from luster_app.auth import AuthError, AuthSession, AuthUnavailable
from luster_app.config import get_settings
from luster_app.context import AppContext, default_context
from luster_app.models import User
from luster_app.services import auth as auth_service
from luster_app.services.users import credit_summary

_SECURE = get_settings().app_url.startswith("https://")
_SESSION_MAX_AGE = get_settings().refresh_ttl_seconds
# The browser's own API calls (the upload queue) get a token valid at least this much longer.
BROWSER_TOKEN_AHEAD_SECONDS = 600


def app_context() -> AppContext:
    """The process's context: database and providers, built on first use."""
    return default_context()


def _session_cookie(name: str, max_age: int = _SESSION_MAX_AGE) -> rx.Cookie:
    # Secure under https; SameSite=Lax so a link from the sign-in email still carries it.
    return rx.Cookie("", name=name, path="/", max_age=max_age, secure=_SECURE, same_site="lax")


class AuthState(rx.State):
    """Session cookies, the verified user's display data, and sign-in/sign-out navigation."""

    access_token: str = _session_cookie("luster_session")
    refresh_token: str = _session_cookie("luster_refresh")
    # Where to land after sign-in when the link itself does not say (Supabase's email template).
    return_to: str = _session_cookie("luster_return_to", max_age=3600)
    # This browser's proof that it asked for the sign-in link it opens (see services.auth.OtherBrowser).
    # Under https the __Host- prefix stops a sibling subdomain from planting its own value.
    signin_nonce: str = _session_cookie("__Host-luster_signin" if _SECURE else "luster_signin", max_age=3600)
    signed_in: bool = False
    email: str = ""
    auth_problem: str = ""
    # For display (the navbar, billing); refreshed by page loads and credit-changing actions.
    credits_balance: int = 0
    credits_available: int = 0

    def _signed_in_user(self) -> User | None:
        """The verified user of this browser, refreshing its tokens if needed; None when signed out."""
        context = app_context()
        try:
            with context.session() as session:
                result = auth_service.resume_session(
                    session=session, auth=context.auth, access_token=self.access_token, refresh_token=self.refresh_token
                )
        except AuthUnavailable as exc:
            # An outage is not a sign-out: keep the cookies for when the provider is back.
            self.auth_problem = str(exc)
            return None
        if result is None:
            self._forget_session()
            return None
        if result.tokens is not None:
            self._remember_session(result.tokens)
        # Assigned only when they differ: an assignment is sent to the browser, equal or not (a poll every 2 s).
        if (self.signed_in, self.email, self.auth_problem) != (True, result.user.email, ""):
            self.signed_in, self.email, self.auth_problem = True, result.user.email, ""
        return result.user

    def _browser_token(self) -> str:
        """The access token for the browser's own API calls, refreshed when it expires within
        BROWSER_TOKEN_AHEAD_SECONDS, so a long upload queue never sends an expired one."""
        try:
            # Only when to refresh is read from the token; every use of it is verified by the API.
            expires = jwt.decode(self.access_token, options={"verify_signature": False}).get("exp", 0)
        except jwt.PyJWTError:
            expires = 0
        if self.refresh_token and expires < time.time() + BROWSER_TOKEN_AHEAD_SECONDS:
            context = app_context()
            try:
                with context.session() as session:
                    result = auth_service.refresh_session(session=session, auth=context.auth, refresh_token=self.refresh_token)
                self._remember_session(result.tokens)
            except (AuthError, AuthUnavailable):
                pass  # the API will say what is wrong; the next follow tries again
        return self.access_token

    def _load_credits(self, user: User) -> None:
        """Refresh the displayed balance and available credits of `user`."""
        with app_context().session() as session:
            summary = credit_summary(session=session, user_id=user.id)
        if (self.credits_balance, self.credits_available) != (summary["balance"], summary["available"]):
            self.credits_balance, self.credits_available = summary["balance"], summary["available"]

    def _remember_session(self, tokens: AuthSession) -> None:
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token

    def _forget_session(self) -> None:
        self.access_token = ""
        self.refresh_token = ""
        self.signed_in, self.email = False, ""

    def _current_path(self) -> str:
        url = self.router.url
        return f"{url.path}?{url.query}" if url.query else url.path

    def _sign_in_first(self) -> EventSpec:
        """Send the visitor to sign in, and back to this page afterwards."""
        return rx.redirect(routes.login(self._current_path()))

    def _next_path(self, *candidates: str | None) -> str:
        """The first given candidate made safe (same site, not a sign-in page), else the shoots page."""
        chosen = next((c for c in candidates if c), None)
        return auth_service.safe_next_path(chosen, app_url=app_context().settings.app_url)

    @rx.event
    def require_sign_in(self):
        """on_load for pages that need a signed-in user: signed-out visitors go to sign in first."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self._load_credits(user)

    @rx.event
    def load_user(self):
        """on_load for public pages that show who is signed in (the navbar); sends nobody anywhere."""
        user = self._signed_in_user()
        if user is not None:
            self._load_credits(user)

    @rx.event
    def sign_out(self):
        """End the session at the provider, drop the cookies, and go to the landing page."""
        context = app_context()
        try:
            auth_service.sign_out(auth=context.auth, access_token=self.access_token)
        except AuthUnavailable:
            pass  # the cookies go regardless
        self._forget_session()
        return rx.redirect(routes.LANDING)
