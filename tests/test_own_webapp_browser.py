"""Owning one's work in a real browser, on a desktop and on a phone: rename a shoot, retry a failed
upload, see an upload that never arrived until it is dismissed, cancel a queued batch, delete a
photo and a shoot, close the account.

The app runs without a worker, so enhanced photos stay queued until the photographer cancels
them. Screenshots land beside those of tests/test_webapp_browser.py, prefixed `own-`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser_support import chromium, served_app
from tests.conftest import PHOTOS
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import VIEWPORTS, Photographer, screenshots  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHOTO_FILES = [PHOTOS / "gps" / "DSCN0010.jpg", *sorted((PHOTOS / "orientation").glob("*.jpg"))[:2]]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("own-webapp"), with_worker=False, SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_photographer_renames_cancels_deletes_and_closes_the_account(
    device: str, app_url: str, smtp: SmtpSink, browser, screenshots: Path, tmp_path: Path  # noqa: ANN001, F811
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone", has_touch=device == "phone")
    page = context.new_page()
    me = Photographer(page, app_url, smtp, screenshots, f"own-{device}")
    me.sign_in(f"own-{device}-{uuid.uuid4().hex[:6]}@example.com")
    shoot_id = me.create_shoot("12 Oak Stret", "")
    api = httpx.Client(base_url=app_url, headers=me.api_headers(), timeout=60)
    checkout = api.post("/api/billing/checkout", json={"pack": "starter"}).json()
    assert api.post(f"/api/billing/local-checkout/{checkout['session_id']}/pay").status_code in (200, 303)

    # Rename the shoot (the typo) and give it its address.
    page.click("#shoot-rename")
    page.fill("#rename-name", "12 Oak Street")
    page.fill("#rename-address", "12 Oak Street, Sacramento CA")
    me.shot("rename", full_page=False)
    page.click("#rename-save")
    page.wait_for_function("document.querySelector('#shoot-title').innerText === '12 Oak Street'")
    assert api.get("/api/shoots").json()[0]["address"] == "12 Oak Street, Sacramento CA"

    # Three photos and a file that is not one; after a reload, the refused file is still listed with its reason.
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("shopping list, not a photo")
    # The connection drops during the first file's upload: its row offers "Retry".
    dropped: list[str] = []

    def drop_first(route) -> None:  # noqa: ANN001
        if route.request.method == "PUT" and not dropped:
            dropped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/api/files/**", drop_first)
    me.upload(*PHOTO_FILES, not_a_photo)
    retry = page.locator('.upload-row[data-state="failed"] .upload-retry')
    retry.wait_for()
    assert retry.count() == 1
    me.shot("upload-failed")
    retry.click()
    page.wait_for_function(f"document.querySelectorAll('.photo-card').length === {len(PHOTO_FILES)}")
    page.unroute("**/api/files/**")
    me.upload_row("notes.jpg").locator(".upload-error").wait_for()
    assert me.upload_row("notes.jpg").locator(".upload-retry").count() == 0  # the same file would fail again
    page.reload()
    refused = page.locator(".refused-upload", has_text="notes.jpg")
    refused.wait_for()
    assert "not a photo" in refused.inner_text().lower()
    me.shot("refused-upload")
    refused.locator(".refused-dismiss").click()
    refused.wait_for(state="detached")

    # Enhance all three: they wait in the queue (no worker here), and "Select all" now takes none.
    page.click("#select-all")
    me.enhance(expected_cost=3)
    page.wait_for_selector("#shoot-notice")
    cancel = page.locator("#cancel-queued")
    cancel.wait_for()
    assert cancel.inner_text() == "Cancel queued (3)"
    assert page.is_disabled("#select-all")
    assert api.get("/api/me").json()["credits"] == {"balance": 10, "reserved": 3, "available": 7}
    me.shot("queued")
    cancel.click()
    page.wait_for_function("document.querySelector('#shoot-notice').innerText.includes('3 queued photos canceled')")
    cancel.wait_for(state="detached")
    for photo in PHOTO_FILES:
        assert me.status_of(photo.name) == "Canceled"
    assert api.get("/api/me").json()["credits"] == {"balance": 10, "reserved": 0, "available": 10}
    me.shot("canceled")

    # Delete one photo, after a confirmation that names it.
    doomed = PHOTO_FILES[0].name
    me.card(doomed).locator(".photo-delete").click()
    confirm = page.locator("#photo-delete-confirm")
    confirm.wait_for()
    assert doomed in page.locator("[role=alertdialog]").inner_text()
    me.shot("delete-photo", full_page=False)
    confirm.click()
    me.card(doomed).wait_for(state="detached")
    assert sorted(a["filename"] for a in api.get(f"/api/shoots/{shoot_id}/assets").json()) == sorted(p.name for p in PHOTO_FILES[1:])

    # Delete a whole (mistaken) shoot, after its confirmation.
    extra = api.post("/api/shoots", json={"name": "Wrong listing"}).json()["id"]
    page.goto(f"{app_url}/shoots/{extra}")
    page.click("#shoot-delete")
    page.locator("#shoot-delete-confirm").wait_for()
    me.shot("delete-shoot", full_page=False)
    page.click("#shoot-delete-confirm")
    page.wait_for_url(re.compile(r".*/shoots/?$"))
    assert [s["id"] for s in api.get("/api/shoots").json()] == [shoot_id]

    # Close the account: the confirmation names what goes; the account page says what stays.
    page.goto(f"{app_url}/account")
    assert "credit history" in page.inner_text("#account-what-stays")
    page.wait_for_function("document.querySelector('#account-retention').innerText === "
                           "'Your photos are kept until you delete them.'")
    me.shot("account")
    page.click("#close-account")
    what_goes = page.locator("#close-what-goes")
    what_goes.wait_for()
    assert "your 1 shoot and 2 photos" in what_goes.inner_text()
    me.shot("close-account", full_page=False)
    page.click("#close-account-confirm")
    page.wait_for_url(f"{app_url}/?closed=1")
    refused_me = api.get("/api/me")
    assert refused_me.status_code == 401 and "closed" in refused_me.json()["detail"]
    page.goto(f"{app_url}/shoots")
    page.wait_for_url(re.compile(r".*/login\?next=%2Fshoots.*"))  # signed out: sign in first
    me.shot("closed")
    api.close()
    context.close()
