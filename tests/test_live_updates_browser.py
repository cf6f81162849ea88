"""Live updates of the shoot page in a real browser (Debian's Chromium): a job that finishes while
the page is open shows on its card, and each poll tick sends only the cards whose job moved —
nothing at all while no job moves — as the websocket frames the page receives show.

The real app runs as in production (`reflex run --env prod`); the jobs are queued and canceled
through the API and run by a real worker (`luster worker`) started while the page is open.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.pages.shoot import POLL_SECONDS
from luster_app.services.credits import grant_adjustment
from luster_app.services.shoots import create_shoot
from luster_app.services.users import ensure_user
from tests.browser_support import chromium, served_app
from tests.delivery_support import upload
from tests.jobs_support import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHOTO_COUNT = 16
STEP_TIMEOUT_MS = 120_000


class Frames:
    """The text of every websocket frame the page receives, in order."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.received: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload: str | bytes) -> None:
        self.received.append(payload if isinstance(payload, str) else payload.decode(errors="replace"))

    def since(self, count: int) -> str:
        return "\n".join(self.received[count:])


def _photos(folder: Path) -> list[Path]:
    """Distinct small JPEGs (numbered, so no two are the same photo)."""
    paths = []
    for number in range(PHOTO_COUNT):
        image = Image.new("RGB", (320, 240), ((number * 37) % 256, (number * 71) % 256, 90))
        ImageDraw.Draw(image).rectangle((10, 10, 20 + 15 * number, 200), fill=(240, 240, 240))
        path = folder / f"IMG_{number:04d}.jpg"
        image.save(path, "JPEG", quality=85)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    data = tmp_path_factory.mktemp("live")
    with served_app(data) as url:
        yield url, Settings(_env_file=None, luster_env="test", luster_data_dir=data, app_url=url)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


def test_each_poll_tick_sends_only_the_cards_whose_job_moved(
    served: tuple[str, Settings], browser, tmp_path: Path  # noqa: ANN001
) -> None:
    url, settings = served
    context = AppContext(settings)
    with context.session() as session:
        user = ensure_user(session=session, user_id=uuid.uuid4(), email=f"live-{uuid.uuid4().hex[:6]}@example.com")
        grant_adjustment(session=session, user_id=user.id, delta=3, reason="test credits")
        shoot = create_shoot(session=session, user_id=user.id, name="Live", address=None)
    photos = [upload(context, user.id, shoot.id, path) for path in _photos(tmp_path)]
    token = context.auth.issue_access_token(user_id=user.id, email=user.email)
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    finishing, canceled = photos[:2], photos[2]
    queued = api.post("/api/jobs/batch", json={"asset_ids": [str(p.id) for p in (*finishing, canceled)], "preset": "enhance"})
    assert queued.status_code == 201, queued.text
    job_of = {job["asset_id"]: job["id"] for job in queued.json()["jobs"]}

    page_context = browser.new_context(viewport={"width": 1280, "height": 900})
    page_context.add_cookies([{"name": "luster_session", "value": token, "url": url}])
    page = page_context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    frames = Frames(page)

    def card(photo):  # noqa: ANN001, ANN202
        return page.locator(f'.photo-card[data-filename="{photo.filename}"]')

    def status(photo, word: str) -> None:  # noqa: ANN001
        card(photo).locator(f'.photo-status[data-status="{word}"]').wait_for()

    try:
        page.goto(f"{url}/shoots/{shoot.id}")
        for photo in (*finishing, canceled):
            status(photo, "queued")
        page.wait_for_timeout(2 * POLL_SECONDS * 1000)  # past the tick that follows the page's loading

        # Jobs in flight, none moving: the page keeps polling, and no tick sends any card.
        quiet = len(frames.received)
        page.wait_for_timeout(3 * POLL_SECONDS * 1000)
        assert not [p.filename for p in photos if str(p.id) in frames.since(quiet)]

        # One job canceled: its card says so, and the tick sends that card and none of the others.
        before = len(frames.received)
        assert api.post(f"/api/jobs/{job_of[str(canceled.id)]}/cancel").status_code == 200
        status(canceled, "canceled")
        sent = frames.since(before)
        assert str(canceled.id) in sent
        assert [p.filename for p in photos if str(p.id) in sent] == [canceled.filename]

        # A worker runs the other two while the page is open: each card shows its finished job and
        # its output, and no tick sends a card whose job did not move.
        before = len(frames.received)
        worker = WorkerProcess(settings, None, concurrency=1, log=tmp_path / "worker.log")
        try:
            for photo in finishing:
                status(photo, "succeeded")
                assert card(photo).locator(".output-row").count() == 1
                assert not card(photo).locator(".photo-compare").is_disabled()
        finally:
            worker.signal()
            worker.wait()
        sent = frames.since(before)
        moved = {str(p.id) for p in (*finishing, canceled)}
        assert not [p.filename for p in photos if str(p.id) in sent and str(p.id) not in moved]
        assert page.locator("#batch-progress").count() == 0  # nothing left in flight: the progress bar is gone
    finally:
        page_context.close()
        api.close()
        context.db.dispose()

