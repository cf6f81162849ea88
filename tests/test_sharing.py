"""The public disclosure page (California AB 723): share, read signed out, revoke; originals without GPS."""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps
from sqlalchemy import update

from luster_app.context import AppContext
from luster_app.imaging import has_gps, metadata_report
from luster_app.imaging.privacy import find_faces
from luster_app.models import Asset, AssetStatus, Job, JobStatus
from luster_app.services.shoots import create_shoot
from tests.conftest import PHOTOS, make_user
from tests.delivery_support import add_output, every_decode_slot_busy, upload
from tests.dng_support import make_dng

SKY_SUMMARY = "sky replaced; 0.2% of the photo redrawn, all in the sky"


@dataclass
class SharedShoot:
    headers: dict[str, str]
    shoot_id: uuid.UUID
    sky_photo: Asset  # delivered with a new sky
    toned_photo: Asset  # delivered, light and colour only
    held_photo: Asset  # its only edit waits for review
    rejected_photo: Asset  # its only edit was rejected
    sky: Asset
    toned: Asset
    held: Asset


@pytest.fixture
def shoot(context: AppContext) -> SharedShoot:
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="12 Oak Street", address="12 Oak St, Fresno").id
    gps = PHOTOS / "gps"
    sky_photo = upload(context, user.id, shoot_id, gps / "DSCN0010.jpg")
    toned_photo = upload(context, user.id, shoot_id, gps / "DSCN0021.jpg")
    held_photo = upload(context, user.id, shoot_id, gps / "DSCN0025.jpg")
    rejected_photo = upload(context, user.id, shoot_id, gps / "DSCN0029.jpg")
    add_output(context, sky_photo, "enhance", 1)  # an older version: the page shows the newest
    sky = add_output(context, sky_photo, "sky", 2, alteration={
        "measured_by": "masks", "redrawn_inside": 0.002, "redrawn_outside": 0.0, "summary": SKY_SUMMARY})
    toned = add_output(context, toned_photo, "enhance", 1, photo=gps / "DSCN0021.jpg", alteration={
        "measured_by": "fit", "redrawn_inside": 0.0, "redrawn_outside": 0.0,
        "summary": "tone and colour adjusted; nothing redrawn"})
    held = add_output(context, held_photo, "sky", 1, photo=gps / "DSCN0025.jpg", status=AssetStatus.HELD,
                      job_status=JobStatus.NEEDS_REVIEW)
    add_output(context, rejected_photo, "lawn", 1, photo=gps / "DSCN0029.jpg", status=AssetStatus.REJECTED,
               job_status=JobStatus.FAILED)
    return SharedShoot(headers, shoot_id, sky_photo, toned_photo, held_photo, rejected_photo, sky, toned, held)


def _share(client: TestClient, shoot: SharedShoot) -> str:
    response = client.post(f"/api/shoots/{shoot.shoot_id}/share", headers=shoot.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shared"] is True
    url = body["url"]
    assert url.startswith("http://testserver/disclosure/")
    assert len(url.rsplit("/", 1)[1]) >= 40  # 32 random bytes
    return url.removeprefix("http://testserver")


def _links(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page)


def test_a_shared_shoot_shows_its_delivered_photos_and_their_originals_to_anyone(
    client: TestClient, context: AppContext, shoot: SharedShoot
) -> None:
    path = _share(client, shoot)
    assert client.post(f"/api/shoots/{shoot.shoot_id}/share", headers=shoot.headers).json()["url"].endswith(path)
    assert client.get(f"/api/shoots/{shoot.shoot_id}/share", headers=shoot.headers).json()["url"].endswith(path)

    page = client.get(path)  # no sign-in
    assert page.status_code == 200
    assert "noindex" in page.headers["x-robots-tag"]
    assert '<meta name=robots content=\'noindex' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    text = page.text
    assert "12 Oak Street" in text and "12 Oak St, Fresno" in text
    # Two delivered photos; the held and the rejected edits are not delivered, so not there.
    assert text.count("see the unaltered original") == 2
    assert text.count(">Digitally altered<") == 1
    assert SKY_SUMMARY in text
    for absent in (shoot.held_photo, shoot.rejected_photo, shoot.held):
        assert str(absent.id) not in text
    links = _links(text)
    assert f"{path}/photos/{shoot.sky.id}.jpg" in links
    assert f"{path}/photos/{shoot.toned.id}.jpg" in links

    original = client.get(f"{path}/originals/{shoot.sky_photo.id}")
    assert original.status_code == 200
    assert original.headers["content-type"] == "image/jpeg"
    assert "noindex" in original.headers["x-robots-tag"]
    assert 'filename="DSCN0010-original.jpg"' in original.headers["content-disposition"]
    source = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    assert has_gps(source)
    assert not has_gps(original.content)
    # The photographer's own pixels, exactly: the compressed image is copied, not re-encoded.
    assert Image.open(io.BytesIO(original.content)).tobytes() == Image.open(io.BytesIO(source)).tobytes()

    photo = client.get(f"{path}/photos/{shoot.sky.id}.jpg")
    assert photo.status_code == 200
    assert max(Image.open(io.BytesIO(photo.content)).size) <= 1280
    assert not has_gps(photo.content)


def test_what_is_not_on_the_page_is_not_served(client: TestClient, shoot: SharedShoot) -> None:
    path = _share(client, shoot)
    for url in (f"{path}/photos/{shoot.held.id}.jpg", f"{path}/originals/{shoot.held_photo.id}",
                f"{path}/originals/{shoot.rejected_photo.id}", f"{path}/originals/{shoot.sky.id}",
                f"{path}/photos/{shoot.sky_photo.id}.jpg", f"{path}/originals/{uuid.uuid4()}"):
        assert client.get(url).status_code == 404, url


def test_a_revoked_or_unknown_link_is_not_found(client: TestClient, shoot: SharedShoot) -> None:
    path = _share(client, shoot)
    assert client.delete(f"/api/shoots/{shoot.shoot_id}/share", headers=shoot.headers).status_code == 204
    assert client.get(f"/api/shoots/{shoot.shoot_id}/share", headers=shoot.headers).json() == {
        "shared": False, "url": None, "created_at": None}
    for url in (path, f"{path}/originals/{shoot.sky_photo.id}", f"{path}/photos/{shoot.sky.id}.jpg"):
        gone = client.get(url)
        assert gone.status_code == 404, url
    assert "noindex" in client.get(path).headers["x-robots-tag"]
    assert client.get("/disclosure/" + "x" * 43).status_code == 404
    # Sharing again makes a new link; the revoked one stays dead.
    again = _share(client, shoot)
    assert again != path
    assert client.get(again).status_code == 200
    assert client.get(path).status_code == 404


def test_another_users_shoot_cannot_be_shared_read_or_revoked(client: TestClient, context: AppContext,
                                                              shoot: SharedShoot) -> None:
    path = _share(client, shoot)
    _, stranger = make_user(context)
    for method in ("POST", "GET", "DELETE"):
        response = client.request(method, f"/api/shoots/{shoot.shoot_id}/share", headers=stranger)
        assert response.status_code == 404, method
        assert path not in response.text
        assert client.request(method, f"/api/shoots/{shoot.shoot_id}/share").status_code == 401
    assert client.get(path).status_code == 200  # still shared


def test_deleting_a_shared_shoot_ends_its_page(client: TestClient, shoot: SharedShoot) -> None:
    path = _share(client, shoot)
    assert client.delete(f"/api/shoots/{shoot.shoot_id}", headers=shoot.headers).status_code == 200
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_an_original_keeps_its_pixels_and_shows_upright(client: TestClient, context: AppContext,
                                                        orientation: int) -> None:
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="Turned").id
    photo = PHOTOS / "orientation" / f"landscape_{orientation}.jpg"
    original = upload(context, user.id, shoot_id, photo)
    add_output(context, original, "enhance", 1, photo=photo)
    path = client.post(f"/api/shoots/{shoot_id}/share", headers=headers).json()["url"].removeprefix("http://testserver")
    served = client.get(f"{path}/originals/{original.id}").content
    assert Image.open(io.BytesIO(served)).tobytes() == Image.open(photo).tobytes()
    assert metadata_report(served).exif_orientation == (None if orientation == 1 else orientation)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(served))).size == (600, 450)
    assert not has_gps(served)


def test_a_camera_raw_original_is_served_developed_upright_and_without_location(
    client: TestClient, context: AppContext, tmp_path
) -> None:
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="Shot in RAW").id
    dng = tmp_path / "IMG_0001.dng"
    dng.write_bytes(make_dng(480, 320, orientation=6, gps=True))
    original = upload(context, user.id, shoot_id, dng, content_type="image/x-adobe-dng")
    add_output(context, original, "enhance", 1)
    path = client.post(f"/api/shoots/{shoot_id}/share", headers=headers).json()["url"].removeprefix("http://testserver")

    served = client.get(f"{path}/originals/{original.id}")

    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == (480, 320)  # upright, the sensor's full size
    assert not has_gps(served.content)


def test_a_busy_server_answers_the_public_photos_503_not_an_outage(
    client: TestClient, context: AppContext, shoot: SharedShoot
) -> None:
    """Anyone with the link may ask for its photos: their decodes share the web process's bounds."""
    path = _share(client, shoot)
    with every_decode_slot_busy(context):
        busy = client.get(f"{path}/photos/{shoot.sky.id}.jpg")
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
    assert client.get(f"{path}/photos/{shoot.sky.id}.jpg").status_code == 200


def test_an_original_whose_edit_blurred_faces_is_public_with_them_blurred(client: TestClient, context: AppContext) -> None:
    """Auto privacy blurred the faces in what was published; the public original must not undo it."""
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="With people").id
    portrait = PHOTOS.parent / "faces" / "astronaut.png"
    original = upload(context, user.id, shoot_id, portrait, content_type="image/png")
    output = add_output(context, original, "enhance", 1, photo=portrait)
    with context.session() as session:
        session.execute(update(Job).where(Job.id == output.job_id).values(params={"auto_privacy": True}))
        session.commit()
    path = client.post(f"/api/shoots/{shoot_id}/share", headers=headers).json()["url"].removeprefix("http://testserver")

    served = client.get(f"{path}/originals/{original.id}")

    assert served.status_code == 200
    assert find_faces(Image.open(portrait)) and not find_faces(Image.open(io.BytesIO(served.content)))
    assert Image.open(io.BytesIO(served.content)).size == Image.open(portrait).size
