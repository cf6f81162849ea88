"""Downloads: one output or a shoot's ZIP, streamed; "Digitally altered" on scene-altering outputs (AB 723)."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from luster_app.context import AppContext
from luster_app.imaging import has_gps
from luster_app.models import DownloadLink, utcnow
from luster_app.services import downloads, gallery
from luster_app.services.errors import Busy, Forbidden, NotFound
from luster_app.services.shoots import create_shoot
from tests.conftest import make_user
from tests.delivery_support import add_output, every_decode_slot_busy, upload


# In the ZIP, outputs are named by their photo's place in the shoot, its name and the style.
ENHANCED, SKY = "01-DSCN0010-enhance.jpg", "01-DSCN0010-sky.jpg"


@pytest.fixture
def shoot_with_outputs(context: AppContext):  # noqa: ANN201
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="12 Oak Street").id
    original = upload(context, user.id, shoot_id)
    enhanced = add_output(context, original, "enhance", 1)
    sky = add_output(context, original, "sky", 2)
    return user, headers, shoot_id, enhanced, sky


def _zip(response) -> dict[str, bytes]:  # noqa: ANN001
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_shoot_zip_holds_every_output_with_scene_altering_ones_captioned(client: TestClient, context: AppContext,
                                                                        shoot_with_outputs) -> None:  # noqa: ANN001
    _, headers, shoot_id, enhanced, sky = shoot_with_outputs
    response = client.get(f"/api/shoots/{shoot_id}/outputs.zip", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="12 Oak Street.zip"' in response.headers["content-disposition"]
    files = _zip(response)
    assert set(files) == {ENHANCED, SKY}
    # Exposure and colour only: handed over exactly as stored.
    assert files[ENHANCED] == context.storage.get_bytes(enhanced.storage_key)
    # A new sky: the same photo at the same size, with the caption burnt into its bottom-left corner.
    stored = Image.open(io.BytesIO(context.storage.get_bytes(sky.storage_key))).convert("L")
    captioned = Image.open(io.BytesIO(files[SKY])).convert("L")
    assert captioned.size == stored.size
    corner = (0, stored.height * 9 // 10, stored.width // 3, stored.height)
    top = (0, 0, stored.width // 3, stored.height // 10)
    assert _difference(captioned.crop(corner), stored.crop(corner)) > 10
    assert _difference(captioned.crop(top), stored.crop(top)) < 2
    assert not has_gps(files[SKY])


def _difference(a: Image.Image, b: Image.Image) -> float:
    pixels = list(zip(a.getdata(), b.getdata(), strict=True))
    return sum(abs(x - y) for x, y in pixels) / len(pixels)


def test_without_the_disclosure_option_outputs_download_as_stored(client: TestClient, context: AppContext,
                                                                 shoot_with_outputs) -> None:  # noqa: ANN001
    user, headers, shoot_id, _, sky = shoot_with_outputs
    with context.session() as session:
        gallery.set_disclose_alterations(session=session, user_id=user.id, shoot_id=shoot_id, disclose=False)
    files = _zip(client.get(f"/api/shoots/{shoot_id}/outputs.zip", headers=headers))
    assert files[SKY] == context.storage.get_bytes(sky.storage_key)


def test_one_output_downloads_from_storage_or_captioned(client: TestClient, context: AppContext,
                                                       shoot_with_outputs) -> None:  # noqa: ANN001
    _, headers, _, enhanced, sky = shoot_with_outputs
    plain = client.get(f"/api/outputs/{enhanced.id}/download", headers=headers, follow_redirects=False)
    assert plain.status_code == 307  # straight from storage through its own signed URL
    fetched = client.get(plain.headers["location"])
    assert fetched.content == context.storage.get_bytes(enhanced.storage_key)
    assert enhanced.filename in fetched.headers["content-disposition"]

    captioned = client.get(f"/api/outputs/{sky.id}/download", headers=headers)
    assert captioned.status_code == 200
    assert f'filename="{sky.filename}"' in captioned.headers["content-disposition"]
    assert captioned.content != context.storage.get_bytes(sky.storage_key)
    assert Image.open(io.BytesIO(captioned.content)).size == (sky.width, sky.height)


def test_an_enhance_that_redrew_part_of_the_photo_is_captioned_as_on_the_disclosure_page(
    client: TestClient, context: AppContext
) -> None:
    """A tone preset whose edit redrew something (an accepted review) is "Digitally altered" in
    the file as on the public page; before, files were captioned by preset alone."""
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="Redrawn").id
    original = upload(context, user.id, shoot_id)
    redrawn = add_output(context, original, "enhance", 1, alteration={
        "measured_by": "fit", "redrawn_inside": 0.0, "redrawn_outside": 0.02, "summary": "2% redrawn outside"})

    download = client.get(f"/api/outputs/{redrawn.id}/download", headers=headers, follow_redirects=False)

    assert download.status_code == 200  # made here, with the caption, not redirected to the stored file
    assert download.content != context.storage.get_bytes(redrawn.storage_key)


def test_another_users_outputs_are_not_found(client: TestClient, context: AppContext, shoot_with_outputs) -> None:  # noqa: ANN001
    _, _, shoot_id, enhanced, _ = shoot_with_outputs
    stranger, stranger_headers = make_user(context)
    assert client.get(f"/api/shoots/{shoot_id}/outputs.zip", headers=stranger_headers).status_code == 404
    assert client.get(f"/api/outputs/{enhanced.id}/download", headers=stranger_headers).status_code == 404
    assert client.get(f"/api/shoots/{shoot_id}/outputs.zip").status_code == 401
    with context.session() as session, pytest.raises(NotFound):
        downloads.create_download_link(session=session, user_id=stranger.id, shoot_id=shoot_id)


def test_a_browser_link_downloads_until_it_expires(client: TestClient, context: AppContext, shoot_with_outputs) -> None:  # noqa: ANN001
    user, _, shoot_id, enhanced, sky = shoot_with_outputs
    with context.session() as session:
        link = downloads.create_download_link(session=session, user_id=user.id, shoot_id=shoot_id)
    assert link.filename == "12 Oak Street.zip"
    assert set(_zip(client.get(link.path))) == {ENHANCED, SKY}

    with context.session() as session:
        session.execute(update(DownloadLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    expired = client.get(link.path)
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]
    with context.session() as session, pytest.raises(Forbidden):
        downloads.resolve_download_link(session=session, token="not-a-link-we-made-at-all")


def test_the_zip_is_written_while_it_streams(context: AppContext, shoot_with_outputs) -> None:  # noqa: ANN001
    user, _, shoot_id, enhanced, _ = shoot_with_outputs
    with context.session() as session:
        _, files = downloads.shoot_output_files(session=session, user_id=user.id, shoot_id=shoot_id)
    pieces = [piece for piece in downloads.zip_chunks(storage=context.storage, files=files, limits=context.upload_checks, max_pixels=10**8) if piece]
    whole = b"".join(pieces)
    # Each photo leaves as it is read: no piece holds more than one photo (two photos are in it).
    assert len(pieces) >= 3
    assert max(map(len, pieces)) < 0.6 * len(whole)
    assert enhanced.bytes < 0.6 * len(whole)
    assert zipfile.ZipFile(io.BytesIO(whole)).testzip() is None


def test_a_resized_download_on_a_busy_server_is_answered_503_not_decoded_past_its_bounds(
    client: TestClient, context: AppContext, shoot_with_outputs  # noqa: ANN001
) -> None:
    """A captioned or resized download is decoded in the web process: it waits its turn among the
    upload checks, like a public photo, so downloads at once cannot run the process out of memory."""
    _, headers, _, _, sky = shoot_with_outputs
    with every_decode_slot_busy(context):
        busy = client.get(f"/api/outputs/{sky.id}/download?size=web", headers=headers)
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
    assert "try again" in busy.json()["detail"]
    served = client.get(f"/api/outputs/{sky.id}/download?size=web", headers=headers)
    assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).format == "JPEG"


def test_a_zip_that_is_streaming_waits_for_a_decode_slot_instead_of_breaking(
    client: TestClient, context: AppContext, shoot_with_outputs  # noqa: ANN001
) -> None:
    """A ZIP already sent in part cannot be answered 503: its resized photos wait for the web
    process's decode slots, and the whole ZIP arrives once they are free."""
    _, headers, shoot_id, _, _ = shoot_with_outputs
    budget = context.upload_checks.budget
    done = threading.Event()
    result: dict[str, object] = {}

    def download() -> None:
        result["response"] = client.get(f"/api/shoots/{shoot_id}/outputs.zip?size=web", headers=headers)
        done.set()

    with every_decode_slot_busy(context) as release:
        downloader = threading.Thread(target=download)
        downloader.start()
        assert not done.wait(context.settings.upload_check_wait_seconds + 1)  # waiting, not decoding nor failing
        release.set()
        downloader.join(60)
    response = result["response"]
    assert response.status_code == 200
    assert set(_zip(response)) == {ENHANCED, SKY}
    assert budget.peak > 0  # its photos were counted in the process's pixel budget


def test_only_a_few_zips_wait_without_a_timeout(context: AppContext, shoot_with_outputs) -> None:  # noqa: ANN001
    """A flood of ZIPs that resize cannot tie up every request thread waiting for a decode slot:
    past a few per slot, the next one waits only as long as any other decode, then is refused."""
    user, _, shoot_id, _, _ = shoot_with_outputs
    with context.session() as session:
        _, files = downloads.shoot_output_files(session=session, user_id=user.id, shoot_id=shoot_id, size="web")
    patient = context.upload_checks.patient
    waiting = 0
    while patient.acquire(blocking=False):  # that many ZIPs already waiting
        waiting += 1
    try:
        with every_decode_slot_busy(context), pytest.raises(Busy):
            downloads.prepared_bytes(storage=context.storage, file=files[0], limits=context.upload_checks,
                                     max_pixels=10**8, patient=True)
    finally:
        for _ in range(waiting):
            patient.release()
    assert waiting > 0
