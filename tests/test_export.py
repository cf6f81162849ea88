"""Export choices: latest or every version, full, MLS (2048 px) or web (1280 px), a choice of photos;
files named `{nn}-{photo}-{preset}.jpg` in shoot order; sRGB, no location; held edits never included."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageCms

from luster_app.context import AppContext
from luster_app.imaging import has_gps
from luster_app.models import Asset, AssetStatus, JobStatus
from luster_app.services import downloads
from luster_app.services.shoots import create_shoot
from tests.conftest import PHOTOS, make_user
from tests.delivery_support import add_output, upload

GPS = PHOTOS / "gps"
BIG = PHOTOS / "hdr" / "iphone_hdr_NO.jpg"  # 3264×2448, with GPS


@dataclass
class Shoot:
    headers: dict[str, str]
    shoot_id: str
    photos: list[Asset]  # in shoot order
    big_sky: Asset


@pytest.fixture
def shoot(context: AppContext) -> Shoot:
    user, headers = make_user(context)
    with context.session() as session:
        shoot_id = create_shoot(session=session, user_id=user.id, name="12 Oak Street").id
    photos = [upload(context, user.id, shoot_id, GPS / name)
              for name in ("DSCN0010.jpg", "DSCN0021.jpg", "DSCN0025.jpg", "DSCN0029.jpg")]
    first, second, third, fourth = photos
    add_output(context, first, "enhance", 1, photo=BIG)
    big_sky = add_output(context, first, "sky", 2, photo=BIG)
    add_output(context, second, "enhance", 1)
    add_output(context, second, "enhance", 2)
    add_output(context, third, "sky", 1, status=AssetStatus.HELD, job_status=JobStatus.NEEDS_REVIEW)
    add_output(context, fourth, "lawn", 1)
    add_output(context, fourth, "dusk", 2, status=AssetStatus.HELD, job_status=JobStatus.NEEDS_REVIEW)
    add_output(context, fourth, "sky", 3, status=AssetStatus.REJECTED, job_status=JobStatus.FAILED)
    return Shoot(headers, str(shoot_id), photos, big_sky)


def _zip(client: TestClient, shoot: Shoot, **params: str) -> dict[str, bytes]:
    response = client.get(f"/api/shoots/{shoot.shoot_id}/outputs.zip", headers=shoot.headers, params=params)
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}  # in the archive's order


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_latest_versions_in_shoot_order_without_held_or_rejected_edits(client: TestClient, shoot: Shoot) -> None:
    files = _zip(client, shoot, versions="latest")
    # The third photo's only edit waits for review: nothing of it. The fourth: its delivered lawn,
    # not the newer dusk held for review nor the rejected sky. Places stay those of the shoot.
    assert list(files) == ["01-DSCN0010-sky.jpg", "02-DSCN0021-enhance.jpg", "04-DSCN0029-lawn.jpg"]


def test_every_version(client: TestClient, shoot: Shoot) -> None:
    files = _zip(client, shoot, versions="all")
    assert list(files) == ["01-DSCN0010-enhance.jpg", "01-DSCN0010-sky.jpg", "02-DSCN0021-enhance.jpg",
                           "02-DSCN0021-enhance-v2.jpg", "04-DSCN0029-lawn.jpg"]
    assert list(_zip(client, shoot)) == list(files)  # every version is the default


@pytest.mark.parametrize(("size", "long_edge"), [("full", 3264), ("mls", 2048), ("web", 1280)])
def test_sizes(client: TestClient, shoot: Shoot, size: str, long_edge: int) -> None:
    files = _zip(client, shoot, versions="latest", size=size)
    assert len(files) == 3
    width, height = _size(files["01-DSCN0010-sky.jpg"])
    assert max(width, height) == long_edge
    assert abs(width / height - 3264 / 2448) < 0.01
    assert _size(files["02-DSCN0021-enhance.jpg"]) == (640, 480)  # smaller photos are never enlarged
    for data in files.values():
        assert not has_gps(data)
        image = Image.open(io.BytesIO(data))
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_a_choice_of_photos(client: TestClient, context: AppContext, shoot: Shoot) -> None:
    second, fourth = shoot.photos[1], shoot.photos[3]
    files = _zip(client, shoot, versions="all", assets=f"{fourth.id},{second.id}")
    assert list(files) == ["02-DSCN0021-enhance.jpg", "02-DSCN0021-enhance-v2.jpg", "04-DSCN0029-lawn.jpg"]
    url = f"/api/shoots/{shoot.shoot_id}/outputs.zip"
    # A photo of another shoot (or user), or an output's id, is not one of this shoot's photos.
    stranger, _ = make_user(context)
    with context.session() as session:
        elsewhere = create_shoot(session=session, user_id=stranger.id, name="elsewhere").id
    strangers_photo = upload(context, stranger.id, elsewhere)
    for assets in (str(strangers_photo.id), str(shoot.big_sky.id)):
        assert client.get(url, headers=shoot.headers, params={"assets": assets}).status_code == 404
    assert client.get(url, headers=shoot.headers, params={"assets": "not-an-id"}).status_code == 422
    assert client.get(url, headers=shoot.headers, params={"size": "poster"}).status_code == 422
    assert client.get(url, headers=shoot.headers, params={"versions": "some"}).status_code == 422


def test_one_photo_downloads_at_each_size(client: TestClient, context: AppContext, shoot: Shoot) -> None:
    url = f"/api/outputs/{shoot.big_sky.id}/download"
    for size, long_edge in (("mls", 2048), ("web", 1280)):
        response = client.get(url, headers=shoot.headers, params={"size": size})
        assert response.status_code == 200
        assert max(_size(response.content)) == long_edge
        assert not has_gps(response.content)


def test_a_browser_link_carries_the_choices(client: TestClient, context: AppContext, shoot: Shoot) -> None:
    with context.session() as session:
        user_id = session.get(Asset, shoot.photos[0].id).user_id
        link = downloads.create_download_link(session=session, user_id=user_id, shoot_id=shoot.photos[0].shoot_id)
    response = client.get(f"{link.path}&versions=latest&size=web")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["01-DSCN0010-sky.jpg", "02-DSCN0021-enhance.jpg", "04-DSCN0029-lawn.jpg"]
        assert max(_size(archive.read("01-DSCN0010-sky.jpg"))) == 1280
