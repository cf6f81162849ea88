"""Own your work over the API: rename and delete shoots, delete photos and output versions, cancel a
queued job, close the account. On SQLite and PostgreSQL, with photos stored on the S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.models import CreditLedger, PendingDeletion, User
from luster_app.services.credits import grant_adjustment
from luster_app.services.job_queue import claim_jobs
from tests.conftest import PHOTOS, make_user
from tests.engines_for_tests import InvertEngine
from tests.fixtures_storage import Backend, build_backend, new_shoot, upload
from worker.worker import Worker

JPEG = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()


@pytest.fixture
def app(request: pytest.FixtureRequest, settings: Settings, db_url: str) -> Iterator[Backend]:
    """The API on SQLite and PostgreSQL, storing photos on the S3 server (presigned PUT, as on R2)."""
    yield from build_backend("s3-put", settings, db_url, request)


@dataclass
class Photographer:
    user: User
    headers: dict[str, str]
    shoot_id: str


def photographer(app: Backend, credits: int = 5) -> Photographer:
    user, headers = make_user(app.context)
    with app.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=credits, reason="trial credits")
    return Photographer(user=user, headers=headers, shoot_id=new_shoot(app, headers))


def add_photo(app: Backend, who: Photographer, filename: str = "front.jpg", shoot_id: str | None = None) -> str:
    result = upload(app, who.headers, shoot_id or who.shoot_id, JPEG, filename=filename)
    assert result.complete is not None and result.complete.status_code == 200, result.presign.text
    return result.asset_id


def queue(app: Backend, who: Photographer, asset_id: str) -> str:
    response = app.client.post("/api/jobs", json={"asset_id": asset_id, "preset": "enhance"}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def run_worker(app: Backend) -> None:
    context = AppContext(app.context.settings, db=app.context.db, storage=app.context.storage, image_engine=InvertEngine())
    assert Worker(context, concurrency=1, drain=True).run() == 0


def credits(app: Backend, who: Photographer) -> dict[str, int]:
    return app.client.get("/api/me", headers=who.headers).json()["credits"]


def photos(app: Backend, who: Photographer, shoot_id: str | None = None) -> list[dict]:
    response = app.client.get(f"/api/shoots/{shoot_id or who.shoot_id}/assets", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def keys_of(app: Backend, asset_id: str) -> set[str]:
    return {key for key in app.stored_keys() if f"/{asset_id}/" in key}


def test_a_shoot_is_renamed_and_its_address_changed_or_cleared(app: Backend) -> None:
    alice, bob = photographer(app), photographer(app)
    renamed = app.client.patch(f"/api/shoots/{alice.shoot_id}", json={"name": " 14 Oak Street ", "address": "14 Oak St, Springfield"}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["address"]) == ("14 Oak Street", "14 Oak St, Springfield")
    # Only the fields sent change; a null address clears it.
    assert app.client.patch(f"/api/shoots/{alice.shoot_id}", json={"address": None}, headers=alice.headers).json()["address"] is None
    [shoot] = app.client.get("/api/shoots", headers=alice.headers).json()
    assert (shoot["name"], shoot["address"]) == ("14 Oak Street", None)
    empty = app.client.patch(f"/api/shoots/{alice.shoot_id}", json={"name": "  "}, headers=alice.headers)
    assert empty.status_code == 422 and "name" in empty.json()["detail"]
    # Bob's shoot is 404 to Alice, and keeps its name.
    assert app.client.patch(f"/api/shoots/{bob.shoot_id}", json={"name": "Mine now"}, headers=alice.headers).status_code == 404
    assert app.client.get("/api/shoots", headers=bob.headers).json()[0]["name"] == "12 Oak Street"


def test_deleting_a_photo_removes_its_outputs_thumbnails_objects_and_queued_jobs(app: Backend) -> None:
    alice = photographer(app)
    doomed, kept = add_photo(app, alice, "front.jpg"), add_photo(app, alice, "back.jpg")
    finished = queue(app, alice, doomed)
    run_worker(app)
    [before] = [p for p in photos(app, alice) if p["id"] == doomed]
    assert len(before["outputs"]) == 1 and len(keys_of(app, doomed)) == 4  # original, thumb, output, output thumb
    queued = queue(app, alice, doomed)
    assert credits(app, alice) == {"balance": 4, "reserved": 1, "available": 3}

    response = app.client.delete(f"/api/assets/{doomed}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"photos": 1, "outputs": 1, "jobs_canceled": 1, "objects_pending": 0}
    assert [p["id"] for p in photos(app, alice)] == [kept]
    assert keys_of(app, doomed) == set() and len(keys_of(app, kept)) == 2
    assert credits(app, alice) == {"balance": 4, "reserved": 0, "available": 4}  # the reservation is free at once
    for job_id in (finished, queued):
        assert app.client.get(f"/api/jobs/{job_id}", headers=alice.headers).status_code == 404
    # URLs signed before the delete fetch nothing, and the photo cannot be enhanced any more.
    # (S3 answers 403 rather than 404 for a missing key to a client that may not list the bucket.)
    assert app.fetch(before["original_url"]).status_code in (403, 404)
    assert app.fetch(before["outputs"][0]["url"]).status_code in (403, 404)
    again = app.client.post("/api/jobs", json={"asset_id": doomed, "preset": "enhance"}, headers=alice.headers)
    assert again.status_code == 404
    assert app.client.delete(f"/api/assets/{doomed}", headers=alice.headers).status_code == 404


def test_deleting_an_output_removes_that_version_only(app: Backend) -> None:
    alice = photographer(app)
    photo = add_photo(app, alice)
    queue(app, alice, photo)
    queue(app, alice, photo)
    run_worker(app)
    [view] = photos(app, alice)
    first, second = sorted(view["outputs"], key=lambda o: o["version"])
    response = app.client.delete(f"/api/assets/{first['id']}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == 1 and response.json()["photos"] == 0
    [view] = photos(app, alice)
    assert [o["id"] for o in view["outputs"]] == [second["id"]]
    assert app.fetch(first["url"]).status_code in (403, 404)
    assert app.fetch(second["url"]).status_code == 200 and app.fetch(view["original_url"]).status_code == 200
    assert len(keys_of(app, photo)) == 4  # original, thumb, the second version and its thumb


def test_a_photo_being_enhanced_is_not_deleted_under_its_worker(app: Backend) -> None:
    alice = photographer(app)
    photo = add_photo(app, alice, "kitchen.jpg")
    job = queue(app, alice, photo)
    with app.context.session() as session:
        [claimed] = claim_jobs(session=session, owner="test-worker", limit=1, lease_seconds=300)
    assert str(claimed.job.id) == job
    for path in (f"/api/assets/{photo}", f"/api/shoots/{alice.shoot_id}"):
        response = app.client.delete(path, headers=alice.headers)
        assert response.status_code == 409
        assert "being enhanced right now" in response.json()["detail"]
    assert len(photos(app, alice)) == 1 and len(keys_of(app, photo)) == 2
    assert app.client.get(f"/api/jobs/{job}", headers=alice.headers).json()["status"] == "processing"


def test_deleting_a_shoot_removes_every_photo_and_the_shoot(app: Backend) -> None:
    alice = photographer(app)
    other_shoot = new_shoot(app, alice.headers, name="9 Elm Road")
    first, second = add_photo(app, alice, "a.jpg"), add_photo(app, alice, "b.jpg")
    elsewhere = add_photo(app, alice, "c.jpg", shoot_id=other_shoot)
    queue(app, alice, first)
    uploading = app.client.post(
        "/api/uploads/presign",
        json={"shoot_id": alice.shoot_id, "filename": "late.jpg", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=alice.headers,
    ).json()
    response = app.client.delete(f"/api/shoots/{alice.shoot_id}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"photos": 3, "outputs": 0, "jobs_canceled": 1, "objects_pending": 0}
    assert [s["id"] for s in app.client.get("/api/shoots", headers=alice.headers).json()] == [other_shoot]
    assert app.client.get(f"/api/shoots/{alice.shoot_id}/assets", headers=alice.headers).status_code == 404
    assert keys_of(app, first) == keys_of(app, second) == set() and len(keys_of(app, elsewhere)) == 2
    assert credits(app, alice)["reserved"] == 0
    # An upload signed before the delete can still arrive; its object is deleted again once the URL has expired.
    with app.context.session() as session:
        late = session.execute(select(PendingDeletion.storage_key)).scalars().all()
    assert any(uploading["asset_id"] in key and "original" in key for key in late)


def test_the_owner_cancels_a_queued_job_and_gets_the_credit_back_at_once(app: Backend) -> None:
    alice, bob = photographer(app, credits=1), photographer(app)
    photo = add_photo(app, alice)
    job = queue(app, alice, photo)
    assert credits(app, alice)["available"] == 0
    bobs_job = queue(app, bob, add_photo(app, bob))
    assert app.client.post(f"/api/jobs/{bobs_job}/cancel", headers=alice.headers).status_code == 404
    assert app.client.get(f"/api/jobs/{bobs_job}", headers=bob.headers).json()["status"] == "queued"

    response = app.client.post(f"/api/jobs/{job}/cancel", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert "No credit was charged" in response.json()["error_message"]
    assert credits(app, alice) == {"balance": 1, "reserved": 0, "available": 1}
    detail = app.client.get(f"/api/jobs/{job}", headers=alice.headers).json()
    assert [e["type"] for e in detail["events"]][-1] == "canceled"
    again = app.client.post(f"/api/jobs/{job}/cancel", headers=alice.headers)
    assert again.status_code == 409 and "canceled" in again.json()["detail"]
    run_worker(app)  # the worker leaves it alone: nothing is charged, no output made
    assert app.client.get(f"/api/jobs/{job}", headers=alice.headers).json()["outputs"] == []
    assert credits(app, alice)["balance"] == 1
    # The freed credit pays for another photo; once that one runs, it cannot be canceled.
    second = queue(app, alice, photo)
    with app.context.session() as session:
        claim_jobs(session=session, owner="test-worker", limit=5, lease_seconds=300)
    busy = app.client.post(f"/api/jobs/{second}/cancel", headers=alice.headers)
    assert busy.status_code == 409 and "being enhanced right now" in busy.json()["detail"]


def test_closing_the_account_deletes_everything_and_refuses_its_tokens(app: Backend) -> None:
    alice, bob = photographer(app), photographer(app)
    alices_photo, bobs_photo = add_photo(app, alice), add_photo(app, bob)
    queue(app, alice, alices_photo)
    run_worker(app)
    queue(app, alice, alices_photo)
    email = alice.user.email

    response = app.client.delete("/api/me", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["closed"] is True and "credit history" in response.json()["kept"]
    assert keys_of(app, alices_photo) == set() and not any(str(alice.user.id) in key for key in app.stored_keys())
    assert len(keys_of(app, bobs_photo)) == 2 and len(photos(app, bob)) == 1
    for method, path in (("GET", "/api/me"), ("GET", "/api/shoots"), ("DELETE", "/api/me")):
        refused = app.client.request(method, path, headers=alice.headers)
        assert refused.status_code == 401 and "closed" in refused.json()["detail"]
    with app.context.session() as session:
        user = session.get(User, alice.user.id)
        ledger = session.execute(select(CreditLedger.delta, CreditLedger.kind).where(CreditLedger.user_id == alice.user.id)).all()
    # Kept for accounting, without the email: the ledger (the grant and the one finished job).
    assert user is not None and user.closed_at is not None and email not in user.email
    assert sorted(ledger) == [(-1, "job"), (5, "adjustment")]
    # The same address can sign up afresh: a new, empty account.
    newcomer, headers = make_user(app.context, email=email)
    assert newcomer.id != alice.user.id
    assert app.client.get("/api/shoots", headers=headers).json() == []


def test_another_users_ids_are_404_on_every_new_route(app: Backend) -> None:
    alice, bob = photographer(app), photographer(app)
    photo = add_photo(app, bob)
    job = queue(app, bob, photo)
    for method, path, body in (
        ("PATCH", f"/api/shoots/{bob.shoot_id}", {"name": "x"}),
        ("DELETE", f"/api/shoots/{bob.shoot_id}", None),
        ("DELETE", f"/api/assets/{photo}", None),
        ("POST", f"/api/jobs/{job}/cancel", None),
        ("DELETE", f"/api/assets/{uuid.uuid4()}", None),
    ):
        response = app.client.request(method, path, json=body, headers=alice.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert len(photos(app, bob)) == 1 and len(keys_of(app, photo)) == 2
    assert app.client.get(f"/api/jobs/{job}", headers=bob.headers).json()["status"] == "queued"
