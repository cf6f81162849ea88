"""Browser: time until a shoot of 200 photos shows every thumbnail in Chromium, against a bare
HTML page with the same 200 thumbnail <img>s from the same server, in the same run.

The whole app runs as in production (`reflex run --env prod`, SQLite, local storage); the
photos are uploaded through the API (presign, the signed PUT, complete) before the clock starts.
"""

from __future__ import annotations

import importlib.util
import io
import time
import uuid
from typing import Any

import httpx
from PIL import Image, ImageDraw

from bench.common import BenchEnv, Section
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.services.users import ensure_user

PHOTOS = 200
GOAL = 1.3  # the shoot page against the bare page of the same thumbnails
# Resolves once every thumbnail of the page is in the document and decoded.
ALL_THUMBNAILS_SHOWN = """(expected) => {
  const images = [...document.querySelectorAll(".photo-thumb, img.bare-thumb")];
  return images.length >= expected && images.every((img) => img.complete && img.naturalWidth > 0);
}"""


def _photo(number: int) -> bytes:
    """A distinct 2400×1600 JPEG (a photo downsized for the web): numbered, so no two are alike."""
    image = Image.new("RGB", (2400, 1600), ((number * 37) % 256, (number * 71) % 256, (number * 113) % 256))
    ImageDraw.Draw(image).rectangle((200, 200, 200 + 8 * number, 1400), fill=(240, 240, 240))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def shoot_of_photos(url: str, headers: dict[str, str]) -> tuple[str, list[str]]:
    """A shoot with PHOTOS photos uploaded the browser's way; its id and the thumbnails' signed URLs."""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        shoot_id = http.post("/api/shoots", json={"name": "200 photos"}).json()["id"]
        for number in range(PHOTOS):
            data = _photo(number)
            presign = http.post("/api/uploads/presign", json={
                "shoot_id": shoot_id, "filename": f"IMG_{number:04d}.jpg", "content_type": "image/jpeg", "size": len(data),
            }).json()
            httpx.put(presign["upload"]["url"], content=data, headers=presign["upload"]["headers"]).raise_for_status()
            http.post(f"/api/uploads/{presign['asset_id']}/complete").raise_for_status()
        assets = http.get(f"/api/shoots/{shoot_id}/assets").json()
    return shoot_id, [asset["thumb_url"] for asset in assets]


def _bare_page(thumb_urls: list[str]) -> str:
    images = "".join(f'<img class="bare-thumb" src="{src}" width="256" height="176">' for src in thumb_urls)
    return f"<!doctype html><html><body>{images}</body></html>"


def _time_until_shown(browser: Any, url: str, token: str, *, page_url: str | None = None, html: str | None = None) -> float:
    """Seconds from navigation to every thumbnail shown, in a fresh browser context (cold caches)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "luster_session", "value": token, "url": url}])
    page = context.new_page()
    try:
        started = time.perf_counter()
        if page_url is not None:
            page.goto(page_url, wait_until="commit")
        else:
            # Served from the app's origin (as the thumbnails are) by the browser itself: a page of the
            # app would bring its Content-Security-Policy, under which the bare page could show nothing.
            bare_url = f"{url}/bench-bare-page"
            page.route(bare_url, lambda route: route.fulfill(body=html or "", content_type="text/html"))
            started = time.perf_counter()
            page.goto(bare_url, wait_until="commit")
        page.wait_for_function(ALL_THUMBNAILS_SHOWN, arg=PHOTOS, timeout=300_000, polling=50)
        return time.perf_counter() - started
    finally:
        context.close()


def run(env: BenchEnv) -> Section:
    if importlib.util.find_spec("luster_app.pages.shoot") is None:
        raise RuntimeError("the web app's shoot page is not in this build yet")
    from tests.browser_support import chromium, served_app  # arrives with the web app

    data = env.scratch / f"browser-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    rounds = 1 if env.quick else 3
    with served_app(data) as url:
        settings = Settings(_env_file=None, luster_env="test", luster_data_dir=data, app_url=url)
        context = AppContext(settings)
        token = signed_in_token(context)
        shoot_id, thumb_urls = shoot_of_photos(url, {"Authorization": f"Bearer {token}"})
        ours, bare = [], []
        with chromium() as browser:
            for _ in range(rounds):
                ours.append(_time_until_shown(browser, url, token, page_url=f"{url}/shoots/{shoot_id}"))
                bare.append(_time_until_shown(browser, url, token, html=_bare_page(thumb_urls)))
        context.db.dispose()
    best_ours, best_bare = min(ours), min(bare)
    ratio = best_ours / best_bare
    verdict = "met" if ratio <= GOAL else "NOT met (the page's own scripts, sign-in and state come before its images)"
    return Section(
        title="Browser: a shoot of 200 photos",
        header=("page", "until all 200 thumbnails shown (s)", "ratio", f"goal ≤ {GOAL}×"),
        rows=[("the shoot page (`/shoots/{id}`)", f"{best_ours:.2f}", f"{ratio:.2f}×", verdict),
              ("bare HTML: 200 `<img>` of the same thumbnail URLs", f"{best_bare:.2f}", "1.00×", "")],
        notes=[
            f"Debian's Chromium (headless, Playwright), 1280×900, a fresh browser context each time (cold cache);",
            f"best of {rounds}. From navigation to every thumbnail in the page decoded (`complete`, `naturalWidth`).",
            "The app is `reflex run --env prod` on SQLite and local storage on the same machine: the shoot page",
            "loads its scripts, signs in from the session cookie over the websocket, reads the shoot and signs",
            "200 thumbnail URLs; the bare page only fetches the images.",
        ],
    )


def signed_in_token(context: AppContext) -> str:
    with context.session() as session:
        user = ensure_user(session=session, user_id=uuid.uuid4(), email=f"bench-{uuid.uuid4().hex[:6]}@example.com")
    return context.auth.issue_access_token(user_id=user.id, email=user.email)
