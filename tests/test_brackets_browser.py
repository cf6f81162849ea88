"""In a real browser, on a desktop and on a phone: three uploads grouped into a bracket and
enhanced as one photo, for one credit; a group can be ungrouped again."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from luster_app.migrations import ROOT
from tests.browser_support import BIN_DIRS, served_app
from tests.fakes.smtp_server import SmtpSink
from tests.test_brackets import FRAMES
from tests.test_webapp_browser import VIEWPORTS, Photographer, browser, screenshots, smtp  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GROUP = "Bracket of 3 photos"


@pytest.fixture(scope="module")
def served(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("brackets")
    with served_app(data, with_worker=True, SMTP_URL=smtp.url) as url:
        yield url, data


def _grant(data: Path, email: str, credits: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LUSTER_DATA_DIR": str(data), "DATABASE_URL": "", "LUSTER_ENV": "test"}
    done = subprocess.run([str(BIN_DIRS[1] / "luster"), "credits", "grant", email, str(credits)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_three_uploads_grouped_as_a_bracket_are_enhanced_as_one_photo(
    device: str, served: tuple[str, Path], smtp: SmtpSink, browser, screenshots: Path  # noqa: ANN001, F811
) -> None:
    app_url, data = served
    context = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone", has_touch=device == "phone")
    page = context.new_page()
    me = Photographer(page, app_url, smtp, screenshots, device)
    email = f"{device}-{uuid.uuid4().hex[:6]}@example.com"
    me.sign_in(email)
    me.create_shoot("Memorial Church", "")
    frames = FRAMES[:3]
    me.upload(*frames)
    for frame in frames:
        me.card(frame.name).locator(".photo-thumb").wait_for()
    _grant(data, email, 1)
    page.reload()

    for frame in frames:
        me.card(frame.name).locator(".photo-select").click()
    page.click("#group-bracket")
    group = me.card(GROUP)
    group.wait_for()
    for frame in frames:
        me.card(frame.name).locator(".bracket-frame").wait_for()
    me.shot("bracket-grouped")

    group.locator(".photo-rerun").click()
    me.confirm_enhance(expected_cost=1)
    me.wait_for_status(GROUP, "succeeded")
    page.wait_for_function("document.querySelector('#nav-balance')?.innerText === '0 credits'")
    group.locator(".photo-compare").click()
    page.locator("#compare-image").wait_for()
    me.shot("bracket-enhanced")
    page.keyboard.press("Escape")

    # Ungrouped, the frames are single photos again; the merged photo stays with its enhanced version.
    group.locator(".bracket-ungroup").click()
    page.locator("#shoot-notice", has_text="Bracket ungrouped.").wait_for()
    for frame in frames:
        assert me.card(frame.name).locator(".bracket-frame").count() == 0
    assert me.card("memorial0062_bracket.jpg").count() == 1
    context.close()
