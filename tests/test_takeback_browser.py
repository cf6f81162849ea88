"""In a real browser: a take-back cancels a queued enhancement and its photo says why; the admin
console shows a balance that drifted from its ledger. The app runs with no worker, so jobs wait."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from luster_app.migrations import ROOT
from tests.browser_support import BIN_DIRS, served_app
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import (  # noqa: F401  (fixtures)
    CAMERA_JPEG,
    _signed_in_with_a_shoot,
    browser,
    screenshots,
    smtp,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("takeback")
    with served_app(data, SMTP_URL=smtp.url) as url:
        yield url, data


def _luster(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LUSTER_DATA_DIR": str(data), "DATABASE_URL": "", "LUSTER_ENV": "test"}
    return subprocess.run([str(BIN_DIRS[1] / "luster"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_take_back_cancels_a_queued_photo_which_says_why_and_the_console_shows_drift(
    served: tuple[str, Path], smtp: SmtpSink, browser, screenshots: Path  # noqa: ANN001
) -> None:
    app_url, data = served
    me = _signed_in_with_a_shoot(browser, app_url, smtp, screenshots)
    email = next(m for m in reversed(smtp.inbox))["To"]
    assert _luster(data, "credits", "grant", email, "1").returncode == 0
    me.page.reload()
    me.page.click("#select-all")
    me.enhance(expected_cost=1)
    me.page.wait_for_selector("#shoot-notice")
    me.wait_for_status(CAMERA_JPEG.name, "queued")

    taken = _luster(data, "credits", "grant", email, "-1", "--reason", "refunded by support")
    assert taken.returncode == 0, taken.stderr
    me.page.reload()
    me.wait_for_status(CAMERA_JPEG.name, "canceled")
    error = me.card(CAMERA_JPEG.name).locator(".photo-error").inner_text()
    assert "refunded by support" in error and "No credit was charged" in error
    assert me.balance() == "0 credits"
    me.shot("takeback-canceled")

    assert _luster(data, "admin", "grant", email).returncode == 0
    engine = create_engine(f"sqlite:///{data / 'luster.db'}")
    with engine.begin() as conn:  # a write that bypassed the ledger
        conn.execute(text("UPDATE credits SET balance = balance + 3 WHERE user_id = "
                          "(SELECT id FROM users WHERE email = :email)"), {"email": email})
    engine.dispose()
    me.page.goto(f"{app_url}/admin")
    me.page.wait_for_function("document.querySelector('#admin-drift-count')?.innerText === '1'")
    assert email in me.page.inner_text("#admin-drift")
    me.shot("admin-drift")
    me.page.context.close()
