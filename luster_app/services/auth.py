"""Sign-in flows shared by the REST API and the web UI: ask for a link, confirm it, stay signed in."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email import errors as email_errors
from email import policy as email_policy
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlmodel import Session

from luster_app import routes
from luster_app.auth.base import AuthError, AuthProvider, AuthSession
from luster_app.config import Settings
from luster_app.models import SignInRequest, User, utcnow
from luster_app.services.errors import Invalid
from luster_app.services.ratelimit import check_rate_limit
from luster_app.services.users import ensure_user

RATE_WINDOW_SECONDS = 15 * 60
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Where a link may not send the user back to: the sign-in pages themselves.
NOT_A_DESTINATION = (routes.LOGIN, routes.CONFIRM, routes.LOGOUT)
# How long a browser's request binds its links: Supabase's default link lifetime (local links live 30 minutes).
BROWSER_BINDING_TTL = timedelta(hours=1)
OTHER_BROWSER = (
    "This sign-in link was asked for in another browser, so it does not work here. "
    "Open it in the browser where you asked for it, or ask for a new link from this one."
)


class OtherBrowser(AuthError):
    """A link opened in a browser that did not ask for it (or asked for another account).

    We refuse rather than offer "sign in as X anyway": that click is exactly what a login-CSRF
    lure asks for ("sign in to see the photos"), while refusing costs a user who switched devices
    one more link, and leaves this one unused for the browser that asked.
    """

    status_code = 403

    def __init__(self, message: str = OTHER_BROWSER, *, email: str | None = None) -> None:
        super().__init__(message)
        self.email = email  # the account the link signs in, when the provider can tell before use


@dataclass(frozen=True)
class SignedIn:
    """A signed-in user, and the new tokens when the session was just created or refreshed."""

    user: User
    tokens: AuthSession | None = None


def normalize_email(email: str) -> str:
    """The address lower-cased and trimmed; Invalid (422) when it cannot be an email address."""
    email = (email or "").strip().lower()
    if len(email) > 320 or not EMAIL_PATTERN.match(email) or _mailbox_read_by_mailer(email) != [email]:
        raise Invalid("Enter a valid email address.")
    return email


def _mailbox_read_by_mailer(email: str) -> list[str]:
    """The addresses a mail header holding `email` delivers to.

    Mail parsers read `<a@b.c>`, `a@b.c(x)`, `"a"@b.c` or `=?utf-8?q?a?=@b.c` as the mailbox a@b.c;
    accepting such spellings would give one inbox endless rate-limit buckets and look-alike accounts.
    """
    try:
        return [address.addr_spec for address in email_policy.default.header_factory("To", email).addresses]
    except (email_errors.MessageError, ValueError, IndexError):
        return []


def safe_next_path(value: str | None, *, app_url: str) -> str:
    """A same-site path to land on after sign-in; anything else (other sites, `//host`) gives the default."""
    value = (value or "").strip()
    origin = _origin(app_url)
    if origin and value.startswith(origin + "/"):
        value = value[len(origin):]
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or len(value) > 500
        or any(ord(ch) < 32 for ch in value)
        or urlsplit(value).path in NOT_A_DESTINATION
    ):
        return routes.SHOOTS
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _client_network(address: str) -> str:
    """Who a client address stands for: an IPv4 address, or the /64 an IPv6 host picks its addresses from."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def request_magic_link(
    *, session: Session, auth: AuthProvider, settings: Settings, email: str, client_address: str, next_path: str | None,
    browser_nonce: str | None = None,
) -> None:
    """Send a sign-in link, rate limited per client address and per email; answers alike for every address.

    `browser_nonce` (the web UI's cookie) binds the link to the asking browser: the confirm page
    uses it only there. API clients send none and exchange the token themselves (POST /api/auth/confirm)."""
    email = normalize_email(email)
    # Each limit is committed on its own, so a refused request still counts against the other.
    check_rate_limit(
        session=session,
        bucket=f"magic-link:address:{_client_network(client_address)}",
        limit=settings.magic_link_limit_per_address,
        window_seconds=RATE_WINDOW_SECONDS,
        message="Too many sign-in requests from your network. Wait a few minutes and try again.",
    )
    session.commit()
    check_rate_limit(
        session=session,
        bucket=f"magic-link:email:{email}",
        limit=settings.magic_link_limit_per_email,
        window_seconds=RATE_WINDOW_SECONDS,
        message="Too many sign-in links for this email. Use the latest one, or wait a few minutes.",
    )
    session.commit()
    if browser_nonce:
        _bind_browser(session=session, browser_nonce=browser_nonce, email=email)
    auth.send_magic_link(email=email, next_path=safe_next_path(next_path, app_url=settings.app_url))


def new_browser_nonce() -> str:
    """The random value a browser keeps in a cookie to prove it is the one that asked for a link."""
    return secrets.token_urlsafe(32)


def _browser_hash(browser_nonce: str) -> str:
    return hashlib.sha256(browser_nonce.encode()).hexdigest()


def _bind_browser(*, session: Session, browser_nonce: str, email: str) -> None:
    now = utcnow()
    session.execute(delete(SignInRequest).where(SignInRequest.expires_at <= now))
    session.add(SignInRequest(browser_hash=_browser_hash(browser_nonce), email=email, expires_at=now + BROWSER_BINDING_TTL))
    session.commit()


def requested_emails(*, session: Session, browser_nonce: str) -> list[str]:
    """The accounts this browser asked links for within the last hour, newest first."""
    if not browser_nonce:
        return []
    rows = session.execute(
        select(SignInRequest.email)
        .where(SignInRequest.browser_hash == _browser_hash(browser_nonce), SignInRequest.expires_at > utcnow())
        .order_by(SignInRequest.id.desc())
    ).scalars()
    return list(dict.fromkeys(rows))


def check_browser_link(*, session: Session, auth: AuthProvider, token: str, link_type: str, browser_nonce: str) -> str:
    """The account a link would sign this browser into, without using the link: what the confirm
    page names on its button. AuthError when the link is unusable; OtherBrowser when this browser
    did not ask for it. A provider that cannot name a link's account before use (Supabase) gets
    the account this browser asked for last, and `confirm_browser_link` holds the link to it."""
    linked = auth.link_email(token=token, link_type=link_type)
    asked = requested_emails(session=session, browser_nonce=browser_nonce)
    session.commit()
    if not asked or (linked is not None and linked not in asked):
        raise OtherBrowser(email=linked)
    return linked or asked[0]


def confirm_browser_link(*, session: Session, auth: AuthProvider, token: str, link_type: str, browser_nonce: str) -> SignedIn:
    """Use a link in the browser that asked for it (the confirm page's button), for that account only."""
    expected = check_browser_link(session=session, auth=auth, token=token, link_type=link_type, browser_nonce=browser_nonce)
    signed_in = confirm_magic_link(session=session, auth=auth, token=token, link_type=link_type)
    assert signed_in.tokens is not None
    if signed_in.user.email != expected:
        # Only a provider that cannot name a link's account before use (Supabase) gets here: the
        # link was someone else's, so the session it made is ended, never handed to this browser.
        auth.sign_out(access_token=signed_in.tokens.access_token)
        raise OtherBrowser(email=signed_in.user.email)
    session.execute(delete(SignInRequest).where(SignInRequest.browser_hash == _browser_hash(browser_nonce)))
    session.commit()
    return signed_in


def confirm_magic_link(*, session: Session, auth: AuthProvider, token: str, link_type: str = "magiclink") -> SignedIn:
    """Use a link's token once; the first sign-in creates the user and a zero-balance credits row."""
    tokens = auth.confirm_magic_link(token=token, link_type=link_type)
    user = ensure_user(session=session, user_id=tokens.identity.user_id, email=tokens.identity.email)
    return SignedIn(user=user, tokens=tokens)


def refresh_session(*, session: Session, auth: AuthProvider, refresh_token: str) -> SignedIn:
    """New tokens for a refresh token; AuthError (401) when the session has ended."""
    tokens = auth.refresh_session(refresh_token=refresh_token)
    user = ensure_user(session=session, user_id=tokens.identity.user_id, email=tokens.identity.email)
    return SignedIn(user=user, tokens=tokens)


def authenticate(*, session: Session, auth: AuthProvider, access_token: str) -> User:
    """The user behind an access token (created on first sight); AuthError (401) when it does not verify."""
    identity = auth.verify_access_token(access_token)
    return ensure_user(session=session, user_id=identity.user_id, email=identity.email)


def resume_session(*, session: Session, auth: AuthProvider, access_token: str, refresh_token: str) -> SignedIn | None:
    """A browser's session: its access token if valid, else refreshed once; None when signed out.

    AuthUnavailable propagates, so a sign-in outage does not sign anybody out.
    """
    if access_token:
        try:
            return SignedIn(user=authenticate(session=session, auth=auth, access_token=access_token))
        except AuthError:
            pass
    if not refresh_token:
        return None
    try:
        return refresh_session(session=session, auth=auth, refresh_token=refresh_token)
    except AuthError:
        return None


def sign_out(*, auth: AuthProvider, access_token: str, everywhere: bool = False) -> None:
    """End the provider's session (`everywhere`: all the user's sessions), where it keeps them."""
    if access_token:
        auth.sign_out(access_token=access_token, everywhere=everywhere)
