"""Delivering a local sign-in link: by SMTP when SMTP_URL is set, else (development only) to the console."""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from luster_app.auth.base import AuthUnavailable
from luster_app.config import Settings

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 20
SUBJECT = "Your Luster sign-in link"


def sign_in_message(*, settings: Settings, to: str, link: str, ttl_minutes: int) -> EmailMessage:
    """The plain-text email that carries a sign-in link."""
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="luster.local")
    message.set_content(
        "Click the link below to sign in to Luster:\n\n"
        f"{link}\n\n"
        f"The link works once and expires in {ttl_minutes} minutes.\n"
        "If you did not ask to sign in, you can ignore this email.\n"
    )
    return message


def send_sign_in_link(*, settings: Settings, to: str, link: str, ttl_minutes: int) -> None:
    """Email the link when SMTP is configured; otherwise log it, and only in development."""
    if not settings.smtp_url:
        if settings.luster_env == "development":
            # Printed, not logged: the log handler rightly redacts tokens, which would leave a useless link.
            # (Django's console email backend does the same.) Never outside development.
            print(f"\nSign-in link for {to} (SMTP_URL is not set, so it was not emailed):\n{link}\n",
                  file=sys.stderr, flush=True)
            log.warning("SMTP_URL is not set: the sign-in link for %s is printed on the server's console", to)
        else:
            log.warning("SMTP_URL is not set: a sign-in link for %s was created but not delivered", to)
        return
    message = sign_in_message(settings=settings, to=to, link=link, ttl_minutes=ttl_minutes)
    try:
        _deliver(settings.smtp_url, message)
    except (OSError, smtplib.SMTPException) as exc:
        # The exception text can carry the server's reply, never the link; keep it out anyway.
        log.error("could not send a sign-in email through SMTP_URL: %s", exc.__class__.__name__)
        raise AuthUnavailable("We could not send the sign-in email just now; try again in a minute.") from exc


def _deliver(smtp_url: str, message: EmailMessage) -> None:
    """smtps:// is TLS from the start; smtp:// upgrades with STARTTLS whenever the server offers it."""
    url = urlsplit(smtp_url)
    if url.scheme not in ("smtp", "smtps"):
        raise AuthUnavailable("SMTP_URL must start with smtp:// or smtps://")
    host = url.hostname or "localhost"
    context = ssl.create_default_context()
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if url.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
