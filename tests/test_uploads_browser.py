"""assets/direct_upload.js in a real browser: the file goes straight to storage with progress, then /complete."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from luster_app.config import Settings
from luster_app.migrations import ROOT
from tests.conftest import PHOTOS, make_user, unavailable
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures_storage import Backend, build_backend, free_port, new_shoot

pytestmark = pytest.mark.browser

S3_SETTINGS = ("s3_endpoint", "s3_bucket", "s3_region", "s3_access_key_id", "s3_secret_access_key", "s3_upload_method")
PAGE = f"""<!doctype html><html><body><input type="file" id="photo">
<script>{(ROOT / "assets" / "direct_upload.js").read_text()}</script></body></html>"""

UPLOAD = """async ({token, shootId}) => {
  const file = document.getElementById("photo").files[0];
  const answer = await fetch("/api/uploads/presign", {
    method: "POST",
    headers: {Authorization: `Bearer ${token}`, "Content-Type": "application/json"},
    body: JSON.stringify({shoot_id: shootId, filename: file.name, content_type: file.type, size: file.size}),
  });
  const presign = await answer.json();
  const progress = [];
  try {
    const asset = await lusterDirectUpload({file, presign, token, onProgress: (loaded, total) => progress.push([loaded, total])});
    return {asset, progress};
  } catch (error) {
    return {error: error.message, status: error.status, progress};
  }
}"""


@contextlib.contextmanager
def served_api(settings: Settings, db_url: str) -> Iterator[None]:
    """The real API app on `settings.app_url`, served by granian in its own process."""
    granian = Path(sys.executable).parent / "granian"
    if not granian.exists():
        unavailable("granian is not installed")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LUSTER_ENV": "test",
        "LUSTER_DATA_DIR": str(settings.luster_data_dir),
        "DATABASE_URL": db_url,
        "APP_URL": settings.app_url,
        **{name.upper(): str(getattr(settings, name)) for name in S3_SETTINGS},
    }
    address = urlsplit(settings.app_url)
    server = subprocess.Popen(
        [str(granian), "--interface", "asgi", "--factory", "--host", str(address.hostname), "--port", str(address.port),
         "--no-access-log", "--log-level", "warning", "luster_app.api:create_api"],
        cwd=ROOT, env=env,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{settings.app_url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the API server did not start")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(params=["local", "s3-post", "s3-put"])
def site(request: pytest.FixtureRequest, settings: Settings, sqlite_url: str) -> Iterator[Backend]:
    """The app over real HTTP at its own origin, on each storage backend."""
    origin = f"http://127.0.0.1:{free_port()}"
    backends = build_backend(request.param, settings.model_copy(update={"app_url": origin}), sqlite_url, request)
    backend = next(backends)
    try:
        if backend.name != "local":
            # Like a real bucket, the test bucket lets the app's pages upload and read directly.
            backend.storage.client.put_bucket_cors(
                Bucket=backend.context.settings.s3_bucket,
                CORSConfiguration={"CORSRules": [{
                    "AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT", "POST"],
                    "AllowedHeaders": ["Content-Type"], "MaxAgeSeconds": 600,
                }]},
            )
        with served_api(backend.context.settings, sqlite_url):
            yield backend
    finally:
        backends.close()


@pytest.fixture
def page(site: Backend):  # noqa: ANN201
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    if not CHROMIUM.exists():
        unavailable("Chromium is not installed at /usr/bin/chromium")
    origin = site.context.settings.app_url
    with sync_playwright() as playwright:
        # Page and S3 server are both on loopback here; Chromium's Local Network Access checks
        # (a permission prompt) are about public pages reaching private hosts, not this setup.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]
        )
        page = browser.new_page()
        # The test page comes from the API's origin; everything else is the real server.
        page.route(f"{origin}/", lambda route: route.fulfill(status=200, body=PAGE, content_type="text/html"))
        page.goto(f"{origin}/")
        yield page
        browser.close()


def test_a_photo_uploads_from_the_browser_with_progress(site: Backend, page) -> None:  # noqa: ANN001
    _, headers = make_user(site.context)
    token = headers["Authorization"].removeprefix("Bearer ")
    photo = PHOTOS / "orientation" / "landscape_6.jpg"
    page.set_input_files("#photo", str(photo))
    result = page.evaluate(UPLOAD, {"token": token, "shootId": new_shoot(site, headers)})
    assert "error" not in result, result.get("error")
    asset = result["asset"]
    assert (asset["status"], asset["width"], asset["height"]) == ("ready", 600, 450)
    assert result["progress"] and result["progress"][-1][0] >= photo.stat().st_size
    assert site.fetch(asset["thumb_url"]).status_code == 200
    assert site.storage.get_bytes(next(k for k in site.stored_keys() if "original" in k)) == photo.read_bytes()


def test_a_file_that_is_not_a_photo_fails_with_its_reason(site: Backend, page, tmp_path: Path) -> None:  # noqa: ANN001
    _, headers = make_user(site.context)
    token = headers["Authorization"].removeprefix("Bearer ")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not really a photo")
    page.set_input_files("#photo", str(fake))
    result = page.evaluate(UPLOAD, {"token": token, "shootId": new_shoot(site, headers)})
    assert (result["status"], result["error"]) == (422, "Not a photo: upload JPEG, HEIC, PNG, WebP or camera RAW files.")
    assert site.stored_keys() == set()


@pytest.mark.parametrize("site", ["local"], indirect=True)
def test_local_upload_endpoint_cuts_off_an_oversize_stream_over_http(site: Backend) -> None:
    """Through a real server: a body with no declared length is stopped at the signed limit."""
    upload = site.storage.presign_upload("u/s/a/original.jpg", content_type="image/jpeg", size=10, max_bytes=1_000_000, expires_in=60)

    def body() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB if nobody stops it
            yield b"\0" * (1 << 20)

    response = httpx.put(upload.url, content=body(), headers=upload.headers, timeout=60)
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than the upload limit."}
    assert site.stored_keys() == set()


@pytest.mark.parametrize("site", ["local"], indirect=True)
def test_the_page_waits_and_asks_again_while_the_server_is_busy_checking(site: Backend, page) -> None:  # noqa: ANN001
    """A 503 with Retry-After (the server is checking as many photos as it may) is not a failure:
    the page waits as told and completes the upload. The first answer is the one the API gives
    when busy (tests/test_uploads_check_limits.py); the second goes to the real server."""
    _, headers = make_user(site.context)
    token = headers["Authorization"].removeprefix("Bearer ")
    answers: list[int] = []

    def busy_once(route) -> None:  # noqa: ANN001
        if answers:
            answers.append(200)
            route.continue_()
            return
        answers.append(503)
        route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                      body='{"detail": "We are checking many photos right now; this one will be checked in a moment."}')

    page.route("**/api/uploads/*/complete", busy_once)
    page.set_input_files("#photo", str(PHOTOS / "orientation" / "landscape_6.jpg"))
    result = page.evaluate(UPLOAD, {"token": token, "shootId": new_shoot(site, headers)})

    assert "error" not in result, result.get("error")
    assert result["asset"]["status"] == "ready"
    assert answers == [503, 200]
