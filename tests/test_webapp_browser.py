"""A photographer's whole workflow in a real browser (Debian's Chromium), on a desktop and on a phone.

The real app runs on the embedded default (SQLite, local storage, local sign-in links sent to a
local SMTP server, the classic engine, the local checkout) with a worker beside it. Screenshots of
every page land in $LUSTER_SCREENSHOTS (default test-artifacts/screenshots) for a person to look at.
"""

from __future__ import annotations

import io
import os
import re
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from luster_app.imaging import has_gps
from luster_app.migrations import ROOT
from tests.browser_support import chromium, served_app
from tests.conftest import PHOTOS
from tests.fakes.smtp_server import SmtpSink
from tests.redacted import bearer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAMERA_JPEG = PHOTOS / "gps" / "DSCN0010.jpg"  # 640 x 480, GPS in EXIF
IPHONE_HEIC = PHOTOS / "heic" / "IMG_5195.HEIC"  # 2566 x 3313 upright, GPS, Display P3
NOT_A_PHOTO_NAME = "notes.jpg"
LINK = re.compile(r"https?://\S+")
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# Waiting on the worker and on uploads, never asserting speed: generous limits for a busy machine.
JOB_TIMEOUT_MS = 240_000
STEP_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("webapp"), with_worker=True, SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("LUSTER_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Photographer:
    """Drives the app as a user would, taking a screenshot of each page on the way."""

    def __init__(self, page, app_url: str, smtp: SmtpSink, screenshots: Path, device: str) -> None:  # noqa: ANN001
        self.page, self.app_url, self.smtp, self.screenshots, self.device = page, app_url, smtp, screenshots, device
        page.set_default_timeout(STEP_TIMEOUT_MS)

    def shot(self, name: str, *, full_page: bool = True) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.screenshot(path=str(self.screenshots / f"{self.device}-{name}.png"), full_page=full_page)

    def sign_in(self, email: str) -> None:
        page = self.page
        page.goto(f"{self.app_url}/login?next=%2Fshoots")
        self.shot("login")
        page.fill("#login-email", email)
        page.click("#login-submit")
        page.wait_for_selector("#login-sent")
        message = next(m for m in reversed(self.smtp.inbox) if m["To"] == email)
        link = LINK.search(message.get_payload(decode=True).decode())
        assert link is not None, "the sign-in email has no link"
        page.goto(link.group(0))
        page.click("#confirm-sign-in")
        page.wait_for_url(f"{self.app_url}/shoots")

    def api_headers(self) -> dict[str, str]:
        """The signed-in browser's own bearer token (its session cookie), for steps a test takes by API."""
        cookies = {c["name"]: c["value"] for c in self.page.context.cookies()}
        return bearer(cookies["luster_session"])

    def upload(self, *paths: Path) -> None:
        self.page.set_input_files("#upload-input", [str(path) for path in paths])

    def balance(self) -> str:
        return self.page.inner_text("#nav-balance")

    def create_shoot(self, name: str, address: str) -> str:
        page = self.page
        page.wait_for_selector("#shoots-empty")
        self.shot("shoots-empty")
        page.fill("#shoot-name", name)
        page.fill("#shoot-address", address)
        page.click("#shoot-create")
        page.wait_for_url(re.compile(r".*/shoots/[0-9a-f-]{36}$"))
        page.wait_for_selector("#photos-empty")
        self.shot("shoot-empty")
        return page.url.rsplit("/", 1)[-1]

    def card(self, filename: str):  # noqa: ANN201
        return self.page.locator(f'.photo-card[data-filename="{filename}"]')

    def upload_row(self, name: str):  # noqa: ANN201
        return self.page.locator(".upload-row", has_text=name)

    def status_of(self, filename: str) -> str:
        return self.card(filename).locator(".photo-status").inner_text()

    def wait_for_status(self, filename: str, status: str) -> None:
        self.card(filename).locator(f'.photo-status[data-status="{status}"]').wait_for(timeout=JOB_TIMEOUT_MS)

    def enhance(self, expected_cost: int) -> None:
        self.page.click("#enhance-open")
        self.confirm_enhance(expected_cost)

    def confirm_enhance(self, expected_cost: int) -> None:
        page = self.page
        cost = page.locator("#enhance-cost")
        cost.wait_for()
        assert f"{expected_cost} credit" in cost.inner_text()
        page.click("#enhance-confirm")

    def download(self, click_selector) -> bytes:  # noqa: ANN001
        with self.page.expect_download() as info:
            click_selector()
        return Path(info.value.path()).read_bytes()


def _not_a_photo(tmp_path: Path) -> Path:
    path = tmp_path / NOT_A_PHOTO_NAME
    path.write_text("shopping list, not a photo")
    return path


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_photographer_uploads_enhances_pays_compares_and_downloads(
    device: str, app_url: str, smtp: SmtpSink, browser, screenshots: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[device], accept_downloads=True,
                                  is_mobile=device == "phone", has_touch=device == "phone")
    page = context.new_page()
    me = Photographer(page, app_url, smtp, screenshots, device)
    me.sign_in(f"{device}-{uuid.uuid4().hex[:6]}@example.com")
    assert me.balance() == "0 credits"
    me.create_shoot("12 Oak Street", "12 Oak Street, Sacramento CA")

    # Uploads: straight to storage with per-file progress; a bad file says why and the rest carry on.
    held = []
    page.route("**/api/files/**", lambda route: held.append(route) if route.request.method == "PUT" else route.continue_())
    page.set_input_files("#upload-input", [str(CAMERA_JPEG), str(IPHONE_HEIC), str(_not_a_photo(tmp_path))])
    page.wait_for_function("document.querySelectorAll('.upload-row').length === 3")
    page.locator(".upload-progress").first.wait_for()  # bytes are on their way: progress shows
    assert me.upload_row(CAMERA_JPEG.name).locator(".upload-state").inner_text() in ("Uploading", "Waiting")
    me.shot("uploading")
    for _ in range(STEP_TIMEOUT_MS // 100):  # until the three uploads reach storage's door
        if len(held) == 3:
            break
        page.wait_for_timeout(100)
    assert len(held) == 3, f"{len(held)} of 3 uploads reached storage"
    for route in held:
        route.continue_()
    page.unroute("**/api/files/**")
    for name in (CAMERA_JPEG.name, IPHONE_HEIC.name):
        page.locator('.upload-row[data-state="done"]', has_text=name).wait_for()
    failed = me.upload_row(NOT_A_PHOTO_NAME)
    failed.locator(".upload-error").wait_for()
    assert "not a photo" in failed.locator(".upload-error").inner_text().lower()
    for name in (CAMERA_JPEG.name, IPHONE_HEIC.name):
        me.card(name).locator(".photo-thumb").wait_for()
    assert page.locator(".photo-card").count() == 2
    me.shot("uploaded")

    # The same file chosen again is noticed.
    page.set_input_files("#upload-input", [str(CAMERA_JPEG)])
    duplicate = page.locator(".upload-row", has_text="Already in this shoot")
    duplicate.wait_for()
    assert "already in this shoot" in duplicate.locator(".upload-error").inner_text()
    page.click("#upload-clear")

    # No credits yet: enhancing says so and leads to billing.
    page.click("#select-all")
    me.enhance(expected_cost=2)
    page.wait_for_selector("#payment-required")
    assert "credits" in page.inner_text("#payment-required")
    me.shot("payment-required")
    page.click("#payment-required-buy")
    page.wait_for_url(f"{app_url}/billing")
    page.wait_for_selector("#packs")
    me.shot("billing")

    # Buy a pack through the local checkout; the success page waits for the credits.
    page.click("#buy-starter")
    page.wait_for_url(re.compile(r".*/api/billing/local-checkout/.*"))
    me.shot("checkout")
    page.click("text=Pay")
    page.wait_for_url(re.compile(r".*/billing/success/?\?session_id=.*"))
    page.wait_for_selector("#checkout-granted")
    assert "10 credits" in page.inner_text("#checkout-granted")
    assert me.balance() == "10 credits"
    me.shot("billing-success")

    # Enhance both with the local engine and watch them finish without reloading.
    page.goto(f"{app_url}/shoots")
    page.click(".shoot-card")
    page.wait_for_selector(".photo-card")
    page.click("#select-all")
    me.enhance(expected_cost=2)
    page.wait_for_selector("#shoot-notice")
    me.shot("enhancing")
    for name in (CAMERA_JPEG.name, IPHONE_HEIC.name):
        me.wait_for_status(name, "succeeded")
        assert me.status_of(name) == "Succeeded"
    page.wait_for_function("document.querySelector('#nav-balance').innerText === '8 credits'")
    me.shot("enhanced")

    # Before and after, at full size.
    for name, size in ((CAMERA_JPEG.name, (640, 480)), (IPHONE_HEIC.name, (2566, 3313))):
        me.card(name).locator(".photo-compare").click()
        after = page.locator('#compare-image[data-showing="enhanced"]')
        after.wait_for()
        page.wait_for_function("document.querySelector('#compare-image').complete")
        assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(size)
        before = page.locator("#compare-before")  # the original, in the same frame, left of the split
        before.wait_for()
        page.wait_for_function("document.querySelector('#compare-before').complete && "
                               "document.querySelector('#compare-before').naturalWidth > 0")
        assert before.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(size)
        me.shot(f"compare-{Path(name).suffix[1:].lower()}", full_page=False)  # a dialog: what the screen shows
        page.click("#compare-close")

    # One output, as a file: the original's upright size, no location.
    jpeg = me.download(lambda: me.card(CAMERA_JPEG.name).locator(".photo-download").click())
    assert Image.open(io.BytesIO(jpeg)).size == (640, 480)
    assert not has_gps(jpeg)

    # Re-run one photo with another style: a second version, the first kept.
    me.card(CAMERA_JPEG.name).locator(".photo-rerun").click()
    page.click("#preset-select")
    page.get_by_role("option", name="Sky replacement").click()
    me.shot("rerun", full_page=False)
    me.confirm_enhance(expected_cost=1)
    me.card(CAMERA_JPEG.name).locator(".output-row").nth(1).wait_for(timeout=JOB_TIMEOUT_MS)
    assert [row.inner_text().split("\n")[0] for row in me.card(CAMERA_JPEG.name).locator(".output-row").all()] == [
        "Enhance · v1", "Sky · v2"]

    # The whole shoot as one ZIP: every version, no location in any of them, named by place in the shoot.
    page.click("#download-menu")
    page.locator("#zip-versions").get_by_role("radio", name="Every version").click()
    archive = zipfile.ZipFile(io.BytesIO(me.download(lambda: page.click("#download-zip"))))
    names = archive.namelist()
    place = {name[3:]: name[:2] for name in names}  # the two photos were uploaded together: either may be first
    assert sorted(place) == ["DSCN0010-enhance.jpg", "DSCN0010-sky.jpg", "IMG_5195-enhance.jpg"]
    assert {place["DSCN0010-sky.jpg"], place["IMG_5195-enhance.jpg"]} == {"01", "02"}
    for name in names:
        assert not has_gps(archive.read(name))
    heic = f"{place['IMG_5195-enhance.jpg']}-IMG_5195-enhance.jpg"
    assert Image.open(io.BytesIO(archive.read(heic))).size == (2566, 3313)
    # Each photo's latest, at the MLS size (2048 px on the long edge).
    page.click("#download-menu")
    page.locator("#zip-versions").get_by_role("radio", name="Latest of each photo").click()
    page.locator("#zip-size").get_by_role("radio", name="MLS (2048 px)").click()
    archive = zipfile.ZipFile(io.BytesIO(me.download(lambda: page.click("#download-zip"))))
    assert sorted(archive.namelist()) == sorted([f"{place['DSCN0010-sky.jpg']}-DSCN0010-sky.jpg", heic])
    assert Image.open(io.BytesIO(archive.read(heic))).size == (1586, 2048)

    # The job behind a photo, step by step.
    me.card(CAMERA_JPEG.name).locator(".photo-job-link").click()
    page.wait_for_selector("#job-status")
    assert page.inner_text("#job-status") == "Succeeded"
    assert page.locator(".timeline-row").count() >= 3
    me.shot("job")

    page.goto(f"{app_url}/account")
    page.wait_for_selector("#account-email")
    me.shot("account")
    page.goto(f"{app_url}/billing")
    page.wait_for_selector(".ledger-row")
    assert page.locator(".ledger-row").count() == 4  # the pack and three enhanced photos
    me.shot("billing-history")
    page.goto(f"{app_url}/billing/cancel")
    page.wait_for_selector("#checkout-cancelled")
    me.shot("billing-cancel")
    page.goto(f"{app_url}/shoots")
    page.wait_for_selector(".shoot-card")
    assert "3 enhanced" not in page.inner_text(".shoot-card-status")  # photos, not versions, are counted
    assert "2 enhanced" in page.inner_text(".shoot-card-status")
    me.shot("shoots")
    context.close()


def _signed_in_with_a_shoot(browser, app_url: str, smtp: SmtpSink, screenshots: Path) -> Photographer:  # noqa: ANN001
    page = browser.new_context(viewport=VIEWPORTS["desktop"]).new_page()
    me = Photographer(page, app_url, smtp, screenshots, "desktop")
    me.sign_in(f"{uuid.uuid4().hex[:8]}@example.com")
    me.create_shoot("Hillside Drive", "")
    me.upload(CAMERA_JPEG)
    me.card(CAMERA_JPEG.name).locator(".photo-thumb").wait_for()
    return me


DROP = """async ({name, bytes}) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "image/jpeg"}));
  return transfer;
}"""


def test_the_same_photo_dropped_again_uploads_only_when_the_photographer_insists(
    app_url: str, smtp: SmtpSink, browser, screenshots: Path  # noqa: ANN001
) -> None:
    me = _signed_in_with_a_shoot(browser, app_url, smtp, screenshots)
    # Dragged from the desktop onto the zone this time.
    transfer = me.page.evaluate_handle(DROP, {"name": CAMERA_JPEG.name, "bytes": list(CAMERA_JPEG.read_bytes())})
    me.page.dispatch_event("#upload-zone", "drop", {"dataTransfer": transfer})
    duplicate = me.page.locator('.upload-row[data-state="duplicate"]')
    duplicate.wait_for()
    assert me.page.locator(".photo-card").count() == 1
    duplicate.locator(".upload-insist").click()
    me.page.locator('.upload-row[data-state="done"]').nth(1).wait_for()
    me.page.wait_for_function("document.querySelectorAll('.photo-card').length === 2")
    me.page.context.close()


def test_a_failed_job_says_what_happened_and_what_to_do_next(
    app_url: str, smtp: SmtpSink, browser, screenshots: Path  # noqa: ANN001
) -> None:
    me = _signed_in_with_a_shoot(browser, app_url, smtp, screenshots)
    headers = me.api_headers()
    with httpx.Client(base_url=app_url, headers=headers, timeout=60) as api:
        checkout = api.post("/api/billing/checkout", json={"pack": "starter"}).json()
        api.post(f"/api/billing/local-checkout/{checkout['session_id']}/pay")
        photo = api.get(f"/api/shoots/{me.page.url.rsplit('/', 1)[-1]}/assets").json()[0]
        # Declutter needs the AI engine; this deployment runs the classic one, so the job fails.
        created = api.post("/api/jobs", json={"asset_id": photo["id"], "preset": "declutter"})
        assert created.status_code == 201
    me.page.reload()
    me.wait_for_status(CAMERA_JPEG.name, "failed")  # live, without reloading again
    card = me.card(CAMERA_JPEG.name)
    assert "AI engine" in card.locator(".photo-error").inner_text()
    card.locator(".photo-error a").click()
    me.page.wait_for_selector("#job-error")
    error = me.page.inner_text("#job-error")
    assert "declutter" in error
    assert "What to do: Re-run this photo with another preset" in error
    assert me.page.inner_text("#job-status") == "Failed"
    assert me.balance() == "10 credits"  # a failure costs nothing
    me.shot("job-failed")
    me.page.context.close()
