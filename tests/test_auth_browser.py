"""A real browser signs in through the local provider: email, link, back where it was, sign out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser_support import chromium, served_app
from tests.fakes.smtp_server import SmtpSink
from tests.redacted import Redacted

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINK = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app on a free port, with local auth sending its links through the SMTP sink."""
    with served_app(tmp_path_factory.mktemp("browser-data"), SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def test_browser_signs_in_by_email_link_comes_back_and_signs_out(app_url, smtp, browser) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{app_url}/login?next=%2Fbilling%3Fpack%3Dpro")
    page.fill("#login-email", "Browser@Example.com")
    page.click("#login-submit")
    page.wait_for_selector("#login-sent")
    assert "browser@example.com" in page.inner_text("#login-sent")

    messages = [m for m in smtp.inbox if m["To"] == "browser@example.com"]
    assert len(messages) == 1
    match = LINK.search(messages[0].get_payload(decode=True).decode())
    assert match is not None, "the email has no link"
    link = Redacted(match.group(0))
    assert link.startswith(f"{app_url}/auth/confirm?token="), "the link does not open the confirm page"

    page.goto(link)
    page.wait_for_selector("#confirm-sign-in")  # opening the link signs nobody in: one click does
    assert page.inner_text("#confirm-email") == "browser@example.com"
    page.click("#confirm-sign-in")
    page.wait_for_url(f"{app_url}/billing?pack=pro")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session_cookie = {**cookies["luster_session"], "value": Redacted(cookies["luster_session"]["value"])}
    assert session_cookie["value"] != ""
    assert session_cookie["sameSite"] == "Lax"
    assert session_cookie["secure"] is False  # plain http here; Secure under https

    # Signed in, the sign-in page just goes on.
    page.goto(f"{app_url}/login?next=%2Faccount")
    page.wait_for_url(f"{app_url}/account")

    # The same link in another browser is refused: it worked once.
    stranger = browser.new_context().new_page()
    stranger.goto(link)
    stranger.wait_for_selector("#confirm-failure")
    assert "already used" in stranger.inner_text("#confirm-failure")
    assert "luster_session" not in {c["name"] for c in stranger.context.cookies() if c["value"]}

    page.goto(f"{app_url}/logout")
    page.wait_for_url(f"{app_url}/")
    signed_out = {c["name"]: c["value"] for c in page.context.cookies()}.get("luster_session", "") == ""
    assert signed_out, "the session cookie survived sign-out"


def test_a_tap_before_the_page_is_ready_neither_loses_the_form_nor_puts_the_address_in_the_url(app_url, smtp, browser) -> None:
    # A phone on a slow connection shows the server-rendered form before its scripts run. A tap
    # on the button then must not submit the form the browser's way (a GET that reloads the page
    # with the address in its URL, sends no link and drops where the photographer was going).
    page = browser.new_context().new_page()
    page.route(re.compile(r"\.js(\?.*)?$"), lambda route: route.abort())  # the scripts have not arrived yet
    page.goto(f"{app_url}/login?next=%2Fshoots")
    page.fill("#login-email", "Early@Example.com")
    assert page.is_disabled("#login-submit")
    page.press("#login-email", "Enter")  # the other way to submit a form
    page.wait_for_timeout(500)  # what a native submit would need to navigate; nothing should happen
    assert "early" not in page.url.lower() and "next=%2Fshoots" in page.url, page.url
    assert not any(m["To"] == "early@example.com" for m in smtp.inbox)

    page.unroute_all()
    page.reload()
    page.fill("#login-email", "Early@Example.com")
    page.click("#login-submit")  # waits until the button is enabled: the page is ready
    page.wait_for_selector("#login-sent")
    assert any(m["To"] == "early@example.com" for m in smtp.inbox)
