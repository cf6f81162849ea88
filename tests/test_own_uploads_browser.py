"""The shoot page's upload queue (assets/direct_upload.js) in a real browser: each file lands in
the shoot it was queued for, queued files use the token the page refreshed, a failed file can
be retried, and leaving the page with files on their way asks first."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from luster_app.auth.local import LocalAuth
from luster_app.migrations import ROOT
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import PHOTOS, make_user, unavailable
from tests.fixtures_storage import Backend, new_shoot
from tests.test_uploads_browser import site  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

PAGE = f"""<!doctype html><html><body><input type="file" id="photos" multiple><input id="note">
<script>{(ROOT / "assets" / "direct_upload.js").read_text()}</script></body></html>"""
PHOTO_FILES = sorted((PHOTOS / "orientation").glob("*.jpg"))[:6]
# Resolves once no file is on its way, with the rows.
SETTLED = """async () => {
  while (lusterUploads.inFlight() > 0) await new Promise((resolve) => setTimeout(resolve, 100));
  return lusterUploads.changed();
}"""


@pytest.fixture
def page(site: Backend):  # noqa: ANN201, F811
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    if not CHROMIUM.exists():
        unavailable("Chromium is not installed at /usr/bin/chromium")
    origin = site.context.settings.app_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]
        )
        page = browser.new_page()
        page.route(f"{origin}/", lambda route: route.fulfill(status=200, body=PAGE, content_type="text/html"))
        page.route(f"{origin}/elsewhere", lambda route: route.fulfill(status=200, body="<p>elsewhere</p>", content_type="text/html"))
        page.goto(f"{origin}/")
        yield page
        browser.close()


def filenames_in(site: Backend, headers: dict[str, str], shoot_id: str) -> list[str]:
    response = site.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(asset["filename"] for asset in response.json() if asset["status"] == "ready")


def queue(page, files: list[Path], shoot_id: str, token: str) -> list[dict]:  # noqa: ANN001
    page.set_input_files("#photos", [str(path) for path in files])
    return page.evaluate("(config) => lusterUploads.start(config)", {"inputId": "photos", "shoot": shoot_id, "bearer": token})


@pytest.mark.parametrize("site", ["local", "s3-put"], indirect=True)
def test_files_queued_in_two_shoots_each_land_in_their_own(site: Backend, page) -> None:  # noqa: ANN001, F811
    _, headers = make_user(site.context)
    token = headers["Authorization"].removeprefix("Bearer ")
    shoot_a, shoot_b = new_shoot(site, headers, "12 Oak Street"), new_shoot(site, headers, "9 Elm Road")
    # Five files for A: three start at once, two wait their turn while the photographer opens B
    # and queues one more there.
    queue(page, PHOTO_FILES[:5], shoot_a, token)
    queue(page, PHOTO_FILES[5:], shoot_b, token)
    rows = page.evaluate(SETTLED)
    assert [row["state"] for row in rows] == ["done"] * 6, rows
    assert filenames_in(site, headers, shoot_a) == sorted(p.name for p in PHOTO_FILES[:5])
    assert filenames_in(site, headers, shoot_b) == [PHOTO_FILES[5].name]


@pytest.mark.parametrize("site", ["local"], indirect=True)
def test_queued_files_use_the_refreshed_token_and_a_failed_file_can_be_retried(site: Backend, page) -> None:  # noqa: ANN001, F811
    user, headers = make_user(site.context)
    fresh = headers["Authorization"].removeprefix("Bearer ")
    expired_auth = LocalAuth(settings=site.context.settings.model_copy(update={"session_ttl_seconds": -600}), db=site.context.db)
    expired = expired_auth.issue_access_token(user_id=user.id, email=user.email)
    shoot = new_shoot(site, headers)
    # Queued under a token that has run out; the page hands over a refreshed one while the first
    # three are already on their way (and are refused).
    queue(page, PHOTO_FILES[:5], shoot, expired)
    page.evaluate("(bearer) => { lusterUploads.changed({bearer}); }", fresh)
    rows = page.evaluate(SETTLED)
    assert [row["state"] for row in rows] == ["failed"] * 3 + ["done"] * 2, rows
    assert all("session" in row["error"] and row["retryable"] for row in rows[:3])
    for row in rows[:3]:  # "Retry" on each failed row: the same shoot, the session's newest token
        page.evaluate("(config) => lusterUploads.retry(config)", {"key": row["key"], "bearer": ""})
    rows = page.evaluate(SETTLED)
    assert [row["state"] for row in rows] == ["done"] * 5, rows
    assert filenames_in(site, headers, shoot) == sorted(p.name for p in PHOTO_FILES[:5])


@pytest.mark.parametrize("site", ["local"], indirect=True)
def test_leaving_the_page_with_uploads_on_their_way_asks_first(site: Backend, page) -> None:  # noqa: ANN001, F811
    _, headers = make_user(site.context)
    token = headers["Authorization"].removeprefix("Bearer ")
    held = []  # the presign requests, kept waiting so the files are certainly still on their way
    page.route("**/api/uploads/presign", lambda route: held.append(route))
    page.click("#note")  # browsers ask only on a page the user has interacted with
    page.keyboard.type("x")
    queue(page, PHOTO_FILES[:2], new_shoot(site, headers), token)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    with pytest.raises(PlaywrightError):  # the photographer chose to stay: the navigation is cancelled
        page.goto(f"{site.context.settings.app_url}/elsewhere", timeout=10_000)
    assert dialogs == ["beforeunload"]
    assert page.evaluate("lusterUploads.inFlight()") == 2
    # Once every file has arrived, leaving asks nothing.
    page.unroute("**/api/uploads/presign")
    for route in held:
        route.continue_()
    assert [row["state"] for row in page.evaluate(SETTLED)] == ["done", "done"]
    page.goto(f"{site.context.settings.app_url}/elsewhere")
    assert dialogs == ["beforeunload"] and page.url.endswith("/elsewhere")
