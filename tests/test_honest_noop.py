"""Issue 17 item 2: an edit that finds nothing to do fails with a plain reason and costs nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.api import create_api
from luster_app.engines.classic import ClassicEngine
from luster_app.imaging import load_normalised
from tests.conftest import PHOTOS
from tests.jobs_support import add_photo, balance, job_charges, outputs_of, user_with_credits, worker_context
from worker.worker import Worker


@pytest.fixture
def app(settings, db_url) -> Iterator:
    context = worker_context(settings, db_url, ClassicEngine())
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def _photo(path: str) -> Image.Image:
    image = load_normalised((PHOTOS / path).read_bytes(), max_pixels=100_000_000)
    image.thumbnail((800, 800))  # the masks are found on a 512-pixel copy: same decision, less work
    return image


@pytest.mark.parametrize(
    ("path", "preset", "reason"),
    [
        ("hdr/iphone_hdr_NO.jpg", "sky", "No sky found in this photo; nothing was charged."),
        ("gps/DSCN0025.jpg", "lawn", "No lawn found in this photo; nothing was charged."),
    ],
)
def test_a_preset_with_nothing_to_do_fails_uncharged_with_the_reason(app, path, preset, reason) -> None:
    context, client = app
    user, headers = user_with_credits(context, 2)
    photo = add_photo(context, user, _photo(path))
    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": preset}, headers=headers)
    assert response.status_code == 201, response.text

    assert Worker(context, concurrency=1, drain=True).run() == 0

    job = client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json()
    assert job["status"] == "failed"
    assert job["error_code"] == "nothing_to_do"
    assert job["error_message"].startswith(reason)
    assert job["attempts"] == 1  # permanent: not retried
    assert job["outputs"] == [] and outputs_of(context, job["id"]) == []
    assert balance(context, user.id) == 2 and job_charges(context, user.id) == 0
    assert client.get("/api/me", headers=headers).json()["credits"]["available"] == 2


def test_a_photo_with_sky_is_still_replaced_and_charged(app) -> None:
    context, client = app
    user, headers = user_with_credits(context, 1)
    photo = add_photo(context, user, _photo("orientation/landscape_1.jpg"))
    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "sky"}, headers=headers)

    assert Worker(context, concurrency=1, drain=True).run() == 0

    job = client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json()
    assert job["status"] == "succeeded"
    assert balance(context, user.id) == 0 and job_charges(context, user.id) == 1
    # The classic engine reports exactly what it drew, from its own sky mask: all in the sky.
    alteration = job["alteration"]
    assert alteration["measured_by"] == "masks"
    assert 0.03 < alteration["redrawn_inside"] < 0.2 and alteration["redrawn_outside"] == 0
    assert alteration["largest_outside"] is None and all(area["allowed"] for area in alteration["areas"])
    top = alteration["areas"][0]["box"]
    assert top[1] == 0 and top[3] < 0.5  # the sky: from the top edge, above the middle
    assert job["alteration_summary"].endswith("of the photo redrawn, all in the sky")
