"""Issue 24: every AI edit records what it redrew; one that redrew the house in a sky job waits
for its owner's review, uncharged, and is charged once only if accepted.

Through the real worker, the real `openai` client and the local OpenAI-speaking server, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from luster_app.api import create_api
from luster_app.engines import build_engine
from luster_app.imaging import load_normalised
from luster_app.models import Asset
from luster_app.services import gallery
from luster_app.services.storage_cleanup import sweep_pending_deletions
from tests.admin_support import make_admin
from tests.conftest import PHOTOS, make_user
from tests.fakes.openai_server import FakeOpenAI
from tests.jobs_support import add_photo, balance, job_charges, user_with_credits, worker_context
from worker.worker import Worker

# Where the model paints a window nobody asked for: on the house, well below the skyline.
PAINTED = (0.55, 0.6, 0.7, 0.8)


@pytest.fixture
def app(settings, db_url) -> Iterator:
    with FakeOpenAI() as fake:
        engine_settings = settings.model_copy(update={"openai_api_key": "sk-test-local-only", "openai_base_url": fake.url})
        context = worker_context(engine_settings, db_url, build_engine(engine_settings))
        with TestClient(create_api(context)) as client:
            yield context, client, fake
        context.db.dispose()


def _photo() -> Image.Image:
    return load_normalised((PHOTOS / "orientation" / "landscape_1.jpg").read_bytes(), max_pixels=100_000_000)


def _run_sky_job(context, client, headers, user) -> dict:
    photo = add_photo(context, user, _photo())
    response = client.post("/api/jobs", json={"asset_id": str(photo.id), "preset": "sky"}, headers=headers)
    assert response.status_code == 201, response.text
    assert Worker(context, concurrency=1, drain=True).run() == 0
    return client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json() | {"shoot_id": str(photo.shoot_id)}


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


def _credits(client, headers) -> dict:
    return client.get("/api/me", headers=headers).json()["credits"]


def _delivered(client, headers, shoot_id: str) -> tuple[int, int]:
    """How many outputs the shoot's listing shows, and how many files its ZIP holds."""
    assets = client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    listed = sum(len(asset["outputs"]) for asset in assets)
    archive = client.get(f"/api/shoots/{shoot_id}/outputs.zip", headers=headers)
    assert archive.status_code == 200
    return listed, len(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())


def test_a_tone_only_answer_passes_with_nothing_redrawn(app) -> None:
    context, client, _fake = app
    user, headers = user_with_credits(context, 2)

    job = _run_sky_job(context, client, headers, user)

    assert job["status"] == "succeeded"
    alteration = job["alteration"]
    assert alteration["measured_by"] == "fit"
    assert alteration["redrawn_outside"] < 0.001 and alteration["largest_outside"] is None
    assert job["alteration_summary"].startswith("sky replaced; ")
    assert balance(context, user.id) == 1 and job_charges(context, user.id) == 1
    assert _delivered(client, headers, job["shoot_id"]) == (1, 1)


def _held_job(app) -> tuple:
    context, client, fake = app
    user, headers = user_with_credits(context, 2)
    fake.paint_next(PAINTED)
    return context, client, user, headers, _run_sky_job(context, client, headers, user)


def test_a_new_object_on_the_house_holds_the_edit_for_review_uncharged(app) -> None:
    context, client, user, headers, job = _held_job(app)

    assert job["status"] == "needs_review"
    alteration = job["alteration"]
    assert alteration["redrawn_outside"] > 0.01
    largest = alteration["largest_outside"]
    assert largest["share"] > 0.003 and _iou(largest["box"], PAINTED) > 0.6
    assert largest in alteration["areas"]
    assert "outside the sky" in job["alteration_summary"]
    # Kept for the owner to see, but neither charged nor delivered; the credit stays reserved.
    assert len(job["outputs"]) == 1 and job["outputs"][0]["url"]
    assert balance(context, user.id) == 2 and job_charges(context, user.id) == 0
    assert _credits(client, headers) == {"balance": 2, "reserved": 1, "available": 1}
    assert _delivered(client, headers, job["shoot_id"]) == (0, 0)
    download = client.get(f"/api/outputs/{job['outputs'][0]['asset_id']}/download", headers=headers)
    assert download.status_code == 404
    with context.session() as session:
        progress = gallery.progress_by_shoot(session=session, user_id=user.id)
    assert progress[uuid.UUID(job["shoot_id"])].summary == "1 to review"


def test_accepting_charges_once_and_delivers(app) -> None:
    context, client, user, headers, job = _held_job(app)

    accepted = client.post(f"/api/jobs/{job['id']}/accept", headers=headers)
    again = client.post(f"/api/jobs/{job['id']}/accept", headers=headers)

    assert accepted.status_code == 200 and accepted.json()["status"] == "succeeded"
    assert again.status_code == 409 and "not waiting for review" in again.json()["detail"]
    assert balance(context, user.id) == 1 and job_charges(context, user.id) == 1
    assert _credits(client, headers) == {"balance": 1, "reserved": 0, "available": 1}
    assert _delivered(client, headers, job["shoot_id"]) == (1, 1)
    download = client.get(f"/api/outputs/{job['outputs'][0]['asset_id']}/download", headers=headers)
    assert download.status_code == 200


def test_rejecting_charges_nothing_and_frees_the_credit(app) -> None:
    context, client, user, headers, job = _held_job(app)

    rejected = client.post(f"/api/jobs/{job['id']}/reject", headers=headers)
    accept_after = client.post(f"/api/jobs/{job['id']}/accept", headers=headers)

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "failed" and "nothing was charged" in rejected.json()["error_message"]
    assert accept_after.status_code == 409
    assert balance(context, user.id) == 2 and job_charges(context, user.id) == 0
    assert _credits(client, headers) == {"balance": 2, "reserved": 0, "available": 2}
    assert _delivered(client, headers, job["shoot_id"]) == (0, 0)
    # Re-run: the same photo can be queued again.
    again = client.post("/api/jobs", json={"asset_id": job["asset_id"], "preset": "sky"}, headers=headers)
    assert again.status_code == 201


def _image(client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def test_a_held_edit_is_shown_at_thumbnail_size_until_accepted(app) -> None:
    context, client, user, headers, job = _held_job(app)
    full_size = _photo().size

    shown = _image(client, job["outputs"][0]["url"])
    assert max(shown.size) <= 512 < max(full_size)  # enough to judge, not a free full-size copy

    client.post(f"/api/jobs/{job['id']}/accept", headers=headers)
    accepted = client.get(f"/api/jobs/{job['id']}", headers=headers).json()
    assert _image(client, accepted["outputs"][0]["url"]).size == full_size


def test_a_rejected_edit_is_no_longer_listed_and_its_files_go(app) -> None:
    context, client, user, headers, job = _held_job(app)
    with context.session() as session:
        [output] = session.execute(select(Asset).where(Asset.id == uuid.UUID(job["outputs"][0]["asset_id"]))).scalars()
    assert context.storage.head(output.storage_key) is not None

    client.post(f"/api/jobs/{job['id']}/reject", headers=headers)

    assert client.get(f"/api/jobs/{job['id']}", headers=headers).json()["outputs"] == []
    with context.session() as session:
        sweep_pending_deletions(session=session, storage=context.storage)
    assert context.storage.head(output.storage_key) is None


def test_an_edit_whose_output_was_deleted_cannot_be_accepted_or_charged(app) -> None:
    context, client, user, headers, job = _held_job(app)
    assert client.delete(f"/api/assets/{job['outputs'][0]['asset_id']}", headers=headers).status_code == 200

    accepted = client.post(f"/api/jobs/{job['id']}/accept", headers=headers)

    assert accepted.status_code == 409 and "gone" in accepted.json()["detail"]
    assert balance(context, user.id) == 2 and job_charges(context, user.id) == 0
    assert client.post(f"/api/jobs/{job['id']}/reject", headers=headers).status_code == 200
    assert _credits(client, headers) == {"balance": 2, "reserved": 0, "available": 2}


def test_only_the_owner_decides(app) -> None:
    context, client, user, headers, job = _held_job(app)
    _other, other_headers = make_user(context)

    for verb in ("accept", "reject"):
        assert client.post(f"/api/jobs/{job['id']}/{verb}", headers=other_headers).status_code == 404
    assert client.post(f"/api/jobs/{job['id']}/accept").status_code == 401
    assert balance(context, user.id) == 2 and job_charges(context, user.id) == 0
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).json()["status"] == "needs_review"


def test_the_admin_console_lists_jobs_in_review_with_their_shares(app) -> None:
    context, client, _user, _headers, job = _held_job(app)
    _admin, admin_headers = make_admin(context)

    listed = client.get("/api/admin/jobs", params={"status": "needs_review"}, headers=admin_headers).json()

    assert [row["id"] for row in listed["jobs"]] == [job["id"]]
    assert listed["jobs"][0]["alteration"]["redrawn_outside"] == job["alteration"]["redrawn_outside"] > 0.01


def test_the_thresholds_are_settings(settings, db_url) -> None:
    with FakeOpenAI() as fake:
        engine_settings = settings.model_copy(update={
            "openai_api_key": "sk-test-local-only", "openai_base_url": fake.url,
            "review_outside_share": 0.5, "review_area_share": 0.5,
        })
        context = worker_context(engine_settings, db_url, build_engine(engine_settings))
        with TestClient(create_api(context)) as client:
            user, headers = user_with_credits(context, 1)
            fake.paint_next(PAINTED)
            job = _run_sky_job(context, client, headers, user)
        context.db.dispose()

    assert job["status"] == "succeeded" and job["alteration"]["redrawn_outside"] > 0.01
    assert balance(context, user.id) == 0 and job_charges(context, user.id) == 1
