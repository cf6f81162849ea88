"""The served app in a real browser: its pages carry the security headers, run under their CSP
without one violation, and a sign-in link signs in only the browser that asked for it, on a click.

One served app (one frontend build) for both, since building it is the slow part.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.browser_support import chromium, served_app
from tests.conftest import PHOTOS
from tests.fakes.smtp_server import SmtpSink
from tests.redacted import Redacted

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINK = re.compile(r"https?://\S+")
STEP_TIMEOUT_MS = 60_000
# Recorded in the page before any of its scripts run (Playwright's init scripts are exempt from CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("websec"), SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


def ask_for_link(page, app_url: str, smtp: SmtpSink, email: str) -> str:  # noqa: ANN001
    page.goto(f"{app_url}/login?next=%2Fshoots")
    page.fill("#login-email", email)
    page.click("#login-submit")
    page.wait_for_selector("#login-sent")
    message = next(m for m in reversed(smtp.inbox) if m["To"] == email)
    match = LINK.search(message.get_payload(decode=True).decode())
    assert match is not None, "the sign-in email has no link"
    return Redacted(match.group(0))


def session_cookie(page) -> str:  # noqa: ANN001
    return Redacted({c["name"]: c["value"] for c in page.context.cookies()}.get("luster_session", ""))


def test_pages_and_their_errors_carry_the_security_headers(app_url: str) -> None:
    for path, status in [("/", 200), ("/login", 200), (f"/shoots/{uuid.uuid4()}", 200), ("/no-such-page", 404),
                         ("/direct_upload.js", 200), ("/api/health", 200)]:
        final = httpx.get(f"{app_url}{path}", follow_redirects=True)
        assert final.status_code == status, path
        for answer in [*final.history, final]:  # the redirects (/login to /login/) too
            where = f"{answer.request.url.path} ({answer.status_code})"
            assert answer.headers.get("x-content-type-options") == "nosniff", where
            assert answer.headers.get("x-frame-options") == "DENY", where
            assert answer.headers.get("referrer-policy") == "strict-origin-when-cross-origin", where
            policy = answer.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, where
            script_src = next(part for part in policy.split("; ") if part.startswith(("script-src", "default-src 'none'")))
            assert "'unsafe-inline'" not in script_src, where
    # The sign-in link carries its token in the URL: its page sends no Referer anywhere.
    confirm = httpx.get(f"{app_url}/auth/confirm?token=not-a-real-token")
    assert confirm.headers.get("referrer-policy") == "no-referrer"


def test_signed_in_pages_run_under_the_csp_without_a_violation(app_url: str, smtp: SmtpSink, browser) -> None:  # noqa: ANN001
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    console_errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    def collect() -> None:
        """No violation so far on this document (each full page load starts a new list)."""
        assert page.evaluate("window.__cspViolations") == []

    email = f"csp-{uuid.uuid4().hex[:6]}@example.com"
    page.goto(ask_for_link(page, app_url, smtp, email))
    collect()
    page.click("#confirm-sign-in")
    page.wait_for_url(f"{app_url}/shoots")
    page.wait_for_selector("#shoots-empty")

    # The app works: websocket events, a redirect, an upload through the upload queue (rx.call_script).
    page.fill("#shoot-name", "CSP Street")
    page.fill("#shoot-address", "1 CSP Street")
    page.click("#shoot-create")
    page.wait_for_url(re.compile(r".*/shoots/[0-9a-f-]{36}$"))
    page.wait_for_selector("#photos-empty")
    page.set_input_files("#upload-input", [str(PHOTOS / "gps" / "DSCN0010.jpg")])
    page.locator('.upload-row[data-state="done"]').wait_for()
    page.locator(".photo-card .photo-thumb").wait_for()
    collect()

    # Buying through the local checkout: a script redirect, a form post, a redirect back.
    page.goto(f"{app_url}/billing")
    page.wait_for_selector("#packs")
    collect()
    page.click("#buy-starter")
    page.wait_for_url(re.compile(r".*/api/billing/local-checkout/.*"))
    collect()
    page.click("text=Pay")
    page.wait_for_url(re.compile(r".*/billing/success/?\?session_id=.*"))
    page.wait_for_selector("#checkout-granted")
    collect()
    page.goto(f"{app_url}/account")
    page.wait_for_load_state("networkidle")
    collect()

    assert [text for text in console_errors if "Content Security Policy" in text or "Refused" in text] == []


def test_a_sign_in_link_signs_in_only_the_asking_browser_and_only_on_a_click(app_url: str, smtp: SmtpSink, browser) -> None:  # noqa: ANN001
    asking = browser.new_context().new_page()
    asking.set_default_timeout(STEP_TIMEOUT_MS)
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    link = ask_for_link(asking, app_url, smtp, email)

    # Another browser (a victim sent someone else's link): not signed in, told whose link it is.
    other = browser.new_context().new_page()
    other.set_default_timeout(STEP_TIMEOUT_MS)
    other.goto(link)
    other.wait_for_selector("#confirm-failure")
    assert "another browser" in other.inner_text("#confirm-failure")
    assert email in other.inner_text("#confirm-other-account")
    assert other.locator("#confirm-sign-in").count() == 0
    assert session_cookie(other) == ""

    # The asking browser: the page names the account and waits for the click.
    asking.goto(link)
    asking.wait_for_selector("#confirm-sign-in")
    assert asking.inner_text("#confirm-email") == email
    assert session_cookie(asking) == ""
    asking.click("#confirm-sign-in")
    asking.wait_for_url(f"{app_url}/shoots")
    assert session_cookie(asking) != ""
