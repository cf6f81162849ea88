"""Delivery in a real browser, at desktop and phone sizes: the before/after slider moves by key,
drag and tap and shows both photos at the split; any version can be compared; the disclosure page
opens signed out and its original carries no GPS; the ZIP's choices give the right files.

The real app and worker (classic engine) run as in production. Screenshots land in
$LUSTER_SCREENSHOTS (default test-artifacts/screenshots).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from luster_app.imaging import has_gps
from tests.browser_support import chromium, served_app
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import JOB_TIMEOUT_MS, VIEWPORTS, Photographer, screenshots  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHOTO = Path(__file__).parent / "data" / "photos" / "gps" / "DSCN0010.jpg"  # 640×480, GPS, white sky


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("delivery"), with_worker=True, SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


def _frame(me: Photographer, name: str) -> Image.Image:
    """What the compare frame shows now (labels and the split line included), kept as a screenshot."""
    path = me.screenshots / f"{me.device}-{name}.png"
    me.page.locator("#compare-frame").screenshot(path=str(path))
    return Image.open(path).convert("RGB")


def _split(me: Photographer) -> int:
    return int(me.page.input_value("#compare-range"))


def _differ(a: Image.Image, b: Image.Image, box: tuple[float, float, float, float]) -> float:
    """Mean absolute difference of two frames over `box` (fractions of the frame)."""
    w, h = a.size
    crop = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    return sum(ImageStat.Stat(ImageChops.difference(a.crop(crop), b.crop(crop))).mean) / 3


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_compare_slider_the_disclosure_page_and_export_choices(
    device: str, app_url: str, smtp: SmtpSink, browser, screenshots: Path  # noqa: ANN001, F811
) -> None:
    phone = device == "phone"
    context = browser.new_context(viewport=VIEWPORTS[device], has_touch=phone, is_mobile=phone)
    page = context.new_page()
    me = Photographer(page, app_url, smtp, screenshots, f"{device}-delivery")
    me.sign_in(f"{uuid.uuid4().hex[:8]}@example.com")
    shoot_id = me.create_shoot("7 Elm Road", "")
    me.upload(PHOTO)
    me.card(PHOTO.name).locator(".photo-thumb").wait_for()
    with httpx.Client(base_url=app_url, headers=me.api_headers(), timeout=60) as api:
        checkout = api.post("/api/billing/checkout", json={"pack": "starter"}).json()
        api.post(f"/api/billing/local-checkout/{checkout['session_id']}/pay")
        [photo] = api.get(f"/api/shoots/{shoot_id}/assets").json()
        for preset in ("enhance", "sky"):
            assert api.post("/api/jobs", json={"asset_id": photo["id"], "preset": preset}).status_code == 201
            page.reload()
            me.wait_for_status(PHOTO.name, "succeeded")
        page.reload()
        me.card(PHOTO.name).locator(".output-row").nth(1).wait_for(timeout=JOB_TIMEOUT_MS)

    # --- compare: both photos in one frame, the original left of the split ---
    me.card(PHOTO.name).locator(".photo-compare").click()
    page.wait_for_function("['#compare-image', '#compare-before'].every(s => { const i = document.querySelector(s);"
                           " return i && i.complete && i.naturalWidth === 640; })")
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")  # the dialog has opened
    after_box = page.locator("#compare-image").bounding_box()
    before_box = page.locator("#compare-before").bounding_box()
    # One frame: the split is at the same place in both photos (to a pixel's rounding).
    assert all(abs(after_box[k] - before_box[k]) < 1 for k in ("x", "y", "width", "height"))
    assert _split(me) == 50
    page.focus("#compare-range")
    page.keyboard.press("End")
    page.wait_for_function("document.querySelector('#compare-range').value === '100'")
    all_original = _frame(me, "compare-all-original")
    page.keyboard.press("Home")
    page.wait_for_function("document.querySelector('#compare-range').value === '0'")
    all_enhanced = _frame(me, "compare-all-enhanced")
    whole = (0.05, 0.1, 0.95, 0.9)  # below the labels, clear of the grip at either edge
    assert _differ(all_original, all_enhanced, whole) > 2  # the newest version (Sky) is not the original
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.querySelector('#compare-range').value === '3'")

    # Drag (desktop) or tap (phone) at 60% of the width: the split follows.
    box = page.locator("#compare-frame").bounding_box()
    x, y = box["x"] + 0.6 * box["width"], box["y"] + 0.55 * box["height"]
    if phone:
        page.touchscreen.tap(x, y)
    else:
        page.mouse.move(box["x"] + 0.2 * box["width"], y)
        page.mouse.down()
        page.mouse.move(x, y, steps=8)
        page.mouse.up()
    page.wait_for_function("Math.abs(document.querySelector('#compare-range').value - 60) <= 2")
    split = _split(me) / 100
    mixed = _frame(me, "compare-split")
    # Left of the split the original shows, right of it the enhanced version (away from the line and labels).
    left, right = (0.05, 0.1, split - 0.08, 0.9), (split + 0.08, 0.1, 0.95, 0.9)
    assert _differ(mixed, all_original, left) < 0.25 * _differ(mixed, all_enhanced, left)
    assert _differ(mixed, all_enhanced, right) < 0.25 * _differ(mixed, all_original, right)
    me.shot("compare-slider", full_page=False)

    # Any version: the first (Enhance) in place of the newest (Sky), in the same frame.
    newest = page.get_attribute("#compare-image", "src")
    page.click("#compare-version")
    page.get_by_role("option", name="Enhance · v1").click()
    page.wait_for_function(f"document.querySelector('#compare-image').getAttribute('src') !== {newest!r} && "
                           "document.querySelector('#compare-image').complete && "
                           "document.querySelector('#compare-image').naturalWidth === 640")
    assert "Enhance · v1" in page.inner_text("#compare-version")
    page.click("#compare-close")

    # --- export: each photo's latest, at web size ---
    page.click("#download-menu")
    page.locator("#zip-versions").get_by_role("radio", name="Latest of each photo").click()
    page.locator("#zip-size").get_by_role("radio", name="Web (1280 px)").click()
    archive = zipfile.ZipFile(io.BytesIO(me.download(lambda: page.click("#download-zip"))))
    assert archive.namelist() == ["01-DSCN0010-sky.jpg"]
    assert Image.open(io.BytesIO(archive.read("01-DSCN0010-sky.jpg"))).size == (640, 480)  # never enlarged

    # --- the disclosure page: shared, opened signed out, its original without GPS ---
    page.click("#disclosure-share")
    link = page.locator("#disclosure-link")
    link.wait_for()
    public_url = link.get_attribute("href")
    assert public_url.startswith(f"{app_url}/disclosure/")
    me.shot("shared", full_page=False)
    stranger = browser.new_context(viewport=VIEWPORTS[device], has_touch=phone, is_mobile=phone).new_page()
    response = stranger.goto(public_url)
    assert response.status == 200
    assert "noindex" in response.headers["x-robots-tag"]
    assert stranger.locator(".tag").all_inner_texts() == ["Digitally altered"]  # the newest version: a new sky
    stranger.wait_for_load_state("networkidle")  # the page runs no script (its CSP allows none): nothing to evaluate there
    stranger.screenshot(path=str(screenshots / f"{device}-disclosure-page.png"), full_page=True)
    photo_src = stranger.get_attribute("li img", "src")
    shown = stranger.context.request.get(app_url + photo_src)
    assert shown.ok and Image.open(io.BytesIO(shown.body())).size == (640, 480)
    original = stranger.context.request.get(app_url + stranger.get_attribute("a.original", "href"))
    assert original.ok and original.headers["content-type"] == "image/jpeg"
    assert has_gps(PHOTO.read_bytes()) and not has_gps(original.body())
    assert Image.open(io.BytesIO(original.body())).tobytes() == Image.open(PHOTO).tobytes()
    target = stranger.locator("a.original").bounding_box()
    assert target["height"] >= 44  # a touch target

    # Stop sharing: the page is gone.
    page.click("#disclosure-stop")
    page.locator("#disclosure-share").wait_for()
    assert stranger.goto(public_url).status == 404
    context.close()
    stranger.context.close()
