"""Honest edits in a real browser, at desktop and phone sizes: an AI edit that painted a window
onto the house waits for review with that area outlined; reject charges nothing, accept charges
one credit; "What changed" in compare outlines it on the delivered photo.

The real app and worker run with the AI engine pointed at the local OpenAI-speaking server.
Screenshots land in $LUSTER_SCREENSHOTS (default test-artifacts/screenshots).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser_support import chromium, served_app
from tests.conftest import PHOTOS
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import VIEWPORTS, Photographer, screenshots  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOUSE = PHOTOS / "orientation" / "landscape_1.jpg"
PAINTED = (0.55, 0.6, 0.7, 0.8)  # the window the "model" adds to the house, as canvas fractions


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("honest"), with_worker=True, SMTP_URL=smtp.url,
                    OPENAI_API_KEY="sk-test-local-only", OPENAI_BASE_URL=fake.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


def _queue_painted_sky_job(me: Photographer, api: httpx.Client, fake: FakeOpenAI, photo_id: str) -> None:
    fake.paint_next(PAINTED)
    assert api.post("/api/jobs", json={"asset_id": photo_id, "preset": "sky"}).status_code == 201
    me.page.reload()
    me.wait_for_status(HOUSE.name, "needs_review")


def _open_review(me: Photographer) -> None:
    me.card(HOUSE.name).locator(".photo-review").click()
    me.page.wait_for_selector("#review-image")
    me.page.locator(".changed-area-outside").first.wait_for()


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_held_edit_is_reviewed_and_what_changed_is_outlined(
    device: str, app_url: str, smtp: SmtpSink, fake: FakeOpenAI, browser, screenshots: Path  # noqa: ANN001, F811
) -> None:
    page = browser.new_context(viewport=VIEWPORTS[device]).new_page()
    me = Photographer(page, app_url, smtp, screenshots, device)
    me.sign_in(f"{uuid.uuid4().hex[:8]}@example.com")
    shoot_id = me.create_shoot("Harbour View", "")
    me.upload(HOUSE)
    me.card(HOUSE.name).locator(".photo-thumb").wait_for()
    with httpx.Client(base_url=app_url, headers=me.api_headers(), timeout=60) as api:
        checkout = api.post("/api/billing/checkout", json={"pack": "starter"}).json()
        api.post(f"/api/billing/local-checkout/{checkout['session_id']}/pay")
        photo_id = api.get(f"/api/shoots/{shoot_id}/assets").json()[0]["id"]

        # 1. Held for review, uncharged; the photographer rejects it.
        _queue_painted_sky_job(me, api, fake, photo_id)
        assert me.status_of(HOUSE.name) == "Needs your review"
        assert me.card(HOUSE.name).locator(".photo-download").is_disabled()  # not delivered
        me.shot("honest-needs-review")
        _open_review(me)
        assert "outside the sky" in page.inner_text("#review-summary")
        me.shot("honest-review-dialog", full_page=False)
        page.click("#review-reject")
        me.wait_for_status(HOUSE.name, "failed")
        assert "nothing was charged" in me.card(HOUSE.name).locator(".photo-error").inner_text()
        assert me.balance() == "10 credits"

        # 2. Again, and this time accepted: one credit, delivered.
        _queue_painted_sky_job(me, api, fake, photo_id)
        _open_review(me)
        page.click("#review-accept")
        me.wait_for_status(HOUSE.name, "succeeded")
        page.wait_for_function("document.querySelector('#nav-balance').innerText === '9 credits'")
        assert api.get("/api/me").json()["credits"] == {"balance": 9, "reserved": 0, "available": 9}

    # 3. "What changed" in compare outlines the painted window on the delivered photo.
    me.card(HOUSE.name).locator(".photo-compare").click()
    page.wait_for_selector("#compare-image")
    page.click("#compare-changes")
    page.wait_for_selector("#compare-changes-summary")
    assert page.locator(".changed-area-outside").count() >= 1
    assert "redrawn" in page.inner_text("#compare-changes-summary")
    me.shot("honest-compare-what-changed", full_page=False)
    page.click("#compare-changes")
    page.wait_for_selector(".changed-area", state="detached")
    page.context.close()
