"""Real camera and phone photos upload straight to storage and come back verified, upright and private."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from sqlalchemy import select

from luster_app.imaging import has_gps
from luster_app.models import Asset
from tests.conftest import PHOTOS, make_user
from tests.fixtures_storage import Backend, new_shoot, upload

ALL_PHOTOS = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".heic"))
ORIENTATIONS = sorted((PHOTOS / "orientation").glob("landscape_*.jpg"))


def upright_size(path: Path) -> tuple[int, int]:
    """What a photo viewer shows: Pillow's own EXIF transpose of the fully decoded file."""
    if path.suffix.lower() == ".heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def test_the_test_photos_are_all_there() -> None:
    folders = {p.parent.name for p in ALL_PHOTOS}
    assert folders == {"gps", "orientation", "heic", "hdr", "invalid"}
    assert len(ORIENTATIONS) == 8


def test_every_real_photo_becomes_ready_with_its_upright_size(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    for path in ALL_PHOTOS:
        result = upload(backend, headers, shoot_id, path.read_bytes(), filename=path.name)
        assert result.presign.status_code == 200, (path.name, result.presign.text)
        assert result.sent is not None and result.sent.status_code in (200, 204), (path.name, result.sent.text)
        assert result.complete is not None and result.complete.status_code == 200, (path.name, result.complete.text)
        asset = result.complete.json()
        assert asset["status"] == "ready"
        assert (asset["width"], asset["height"]) == upright_size(path), path.name
        assert asset["bytes"] == path.stat().st_size

    listed = backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert [a["filename"] for a in listed] == [p.name for p in ALL_PHOTOS]
    assert all(a["status"] == "ready" and a["reject_reason"] is None for a in listed)
    heic = next(a for a in listed if a["filename"] == "IMG_5195.HEIC")
    assert heic["content_type"] == "image/heic"
    assert (heic["width"], heic["height"]) == (2566, 3313)
    for asset in listed:
        original = backend.fetch(asset["original_url"])
        assert original.status_code == 200
        assert original.content == (next(p for p in ALL_PHOTOS if p.name == asset["filename"])).read_bytes()


def test_thumbnails_are_small_upright_jpegs_without_gps(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    for path in [*PHOTOS.glob("gps/*.jpg"), PHOTOS / "heic" / "IMG_5195.HEIC", PHOTOS / "hdr" / "iphone_hdr_NO.jpg"]:
        assert has_gps(path.read_bytes()) or path.suffix == ".HEIC"  # the originals do carry GPS
        assert upload(backend, headers, shoot_id, path.read_bytes(), filename=path.name).complete.status_code == 200

    for asset in backend.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json():
        response = backend.fetch(asset["thumb_url"])
        assert response.status_code == 200
        thumb_bytes = response.content
        assert not has_gps(thumb_bytes), asset["filename"]
        with Image.open(io.BytesIO(thumb_bytes)) as thumb:
            assert thumb.format == "JPEG"
            assert max(thumb.size) == 512
            assert "xmp" not in thumb.info and not thumb.getexif()
            # Same shape as the upright original (no crop, no square).
            assert abs(thumb.width / thumb.height - asset["width"] / asset["height"]) < 0.01


def _thumbnail_of(backend: Backend, headers: dict[str, str], shoot_id: str, path: Path) -> Image.Image:
    result = upload(backend, headers, shoot_id, path.read_bytes(), filename=path.name)
    assert result.complete is not None and result.complete.status_code == 200, result.complete.text
    thumb = backend.fetch(result.complete.json()["thumb_url"])
    return Image.open(io.BytesIO(thumb.content)).convert("L")


def _difference(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def test_thumbnails_of_all_eight_orientations_look_alike(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    thumbs = [_thumbnail_of(backend, headers, shoot_id, path) for path in ORIENTATIONS]
    reference = thumbs[0]
    assert reference.size == (512, 384)
    # A wrongly turned or mirrored picture differs by far more than JPEG noise does.
    turned = reference.transpose(Image.Transpose.ROTATE_180)
    mirrored = reference.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    threshold = min(_difference(reference, turned), _difference(reference, mirrored)) / 4
    assert threshold > 5
    for path, thumb in zip(ORIENTATIONS, thumbs, strict=True):
        assert thumb.size == reference.size, path.name
        assert _difference(reference, thumb) < threshold, path.name


def test_shoot_list_counts_photos_and_shows_a_cover(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    first = new_shoot(backend, headers, "Maple House")
    empty = new_shoot(backend, headers, "Empty lot")
    for path in sorted(PHOTOS.glob("gps/*.jpg"))[:2]:
        upload(backend, headers, first, path.read_bytes(), filename=path.name)
    upload(backend, headers, first, b"not a photo", filename="notes.jpg")  # rejected: not counted

    shoots = backend.client.get("/api/shoots", headers=headers).json()
    assert [s["name"] for s in shoots] == ["Empty lot", "Maple House"]
    by_id = {s["id"]: s for s in shoots}
    assert by_id[empty]["photo_count"] == 0
    assert by_id[empty]["cover_thumb_url"] is None
    assert by_id[first]["photo_count"] == 2
    cover = backend.fetch(by_id[first]["cover_thumb_url"])
    first_thumb = backend.client.get(f"/api/shoots/{first}/assets", headers=headers).json()[0]["thumb_url"]
    assert cover.content == backend.fetch(first_thumb).content


@pytest.mark.parametrize("backend", ["s3-put"], indirect=True)
def test_photo_uploaded_on_postgres_too(backend: Backend, pg_context) -> None:  # noqa: ANN001
    """The same flow on PostgreSQL: the conditional completion and the listing queries."""
    from fastapi.testclient import TestClient

    from luster_app.api import create_api
    from luster_app.context import AppContext

    context = AppContext(backend.context.settings, db=pg_context.db)
    with TestClient(create_api(context)) as client:
        pg_backend = Backend(name=backend.name, context=context, client=client)
        _, headers = make_user(context)
        shoot_id = new_shoot(pg_backend, headers)
        path = PHOTOS / "orientation" / "landscape_6.jpg"
        result = upload(pg_backend, headers, shoot_id, path.read_bytes(), filename=path.name)
        assert result.complete.status_code == 200
        again = client.post(f"/api/uploads/{result.asset_id}/complete", headers=headers)
        assert again.status_code == 200  # completing twice is harmless
        listed = client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
        assert [(a["status"], a["width"], a["height"]) for a in listed] == [("ready", 600, 450)]
        assert client.get("/api/shoots", headers=headers).json()[0]["photo_count"] == 1
        with context.session() as session:
            thumbs = session.execute(select(Asset).where(Asset.kind == "thumb")).scalars().all()
        assert [str(t.parent_asset_id) for t in thumbs] == [result.asset_id]
