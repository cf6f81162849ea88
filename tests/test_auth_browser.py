"""A real browser signs in through the local provider: email, link, back where it was, sign out."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from luster_app.migrations import ROOT
from tests.conftest import unavailable
from tests.fakes.smtp_server import SmtpSink
from tests.redacted import Redacted

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
LINK = re.compile(r"https?://\S+")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app (`reflex run --env prod --single-port`) on a free port, with local auth and SMTP."""
    if not CHROMIUM.exists():
        unavailable("Chromium is not installed at /usr/bin/chromium")
    bin_dirs = [ROOT / ".tools" / "node_modules" / ".bin", ROOT / ".venv" / "bin"]
    if not (bin_dirs[0] / "bun").exists():
        unavailable("bun is not installed in .tools (run `make setup`)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("browser-data")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*map(str, bin_dirs), os.environ.get("PATH", "")]),
        "REFLEX_USE_SYSTEM_BUN": "1",
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "APP_URL": url,
        "LUSTER_ENV": "test",
        "LUSTER_DATA_DIR": str(data),
        "DATABASE_URL": "",
        "SUPABASE_URL": "",
        "SMTP_URL": smtp.url,
    }
    subprocess.run([str(bin_dirs[1] / "luster"), "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    log_path = data / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(bin_dirs[1] / "reflex"), "run", "--env", "prod", "--single-port", "--backend-port", str(port),
             "--frontend-port", str(port), "--loglevel", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_until_serving(f"{url}/login", server, log_path)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _wait_until_serving(url: str, server: subprocess.Popen, log_path: Path) -> None:
    # Building the frontend takes a while on a busy machine; this waits for readiness, it asserts no speed.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app exited while starting:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the app did not start:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


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
