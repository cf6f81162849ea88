"""A photographer's shoots and photos are theirs alone: every endpoint answers 404 to anyone else."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import PHOTOS, make_user
from tests.fixtures_storage import Backend, new_shoot, upload

JPEG = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()


@pytest.fixture
def owned(backend: Backend) -> dict:
    """Alice's shoot with one ready and one pending photo; Bob is signed in too."""
    _, alice = make_user(backend.context, "alice@example.com")
    _, bob = make_user(backend.context, "bob@example.com")
    shoot_id = new_shoot(backend, alice, "Alice's listing")
    ready = upload(backend, alice, shoot_id, JPEG, filename="ready.jpg")
    assert ready.complete.status_code == 200
    pending = backend.client.post(
        "/api/uploads/presign",
        json={"shoot_id": shoot_id, "filename": "pending.jpg", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=alice,
    )
    return {"alice": alice, "bob": bob, "shoot_id": shoot_id, "ready": ready.asset_id, "pending": pending.json()}


def test_another_users_shoot_assets_are_404(backend: Backend, owned: dict) -> None:
    response = backend.client.get(f"/api/shoots/{owned['shoot_id']}/assets", headers=owned["bob"])
    assert response.status_code == 404
    assert response.json() == {"detail": "shoot not found"}
    assert backend.client.get(f"/api/shoots/{owned['shoot_id']}/assets", headers=owned["alice"]).status_code == 200


def test_a_shoot_that_does_not_exist_is_the_same_404(backend: Backend, owned: dict) -> None:
    response = backend.client.get(f"/api/shoots/{uuid.uuid4()}/assets", headers=owned["bob"])
    assert (response.status_code, response.json()) == (404, {"detail": "shoot not found"})


def test_another_users_shoots_are_not_listed(backend: Backend, owned: dict) -> None:
    assert backend.client.get("/api/shoots", headers=owned["bob"]).json() == []
    assert [s["name"] for s in backend.client.get("/api/shoots", headers=owned["alice"]).json()] == ["Alice's listing"]


def test_presign_into_another_users_shoot_is_404(backend: Backend, owned: dict) -> None:
    response = upload(backend, owned["bob"], owned["shoot_id"], JPEG, filename="sneaky.jpg")
    assert response.presign.status_code == 404
    assert response.presign.json() == {"detail": "shoot not found"}
    assert len(backend.client.get(f"/api/shoots/{owned['shoot_id']}/assets", headers=owned["alice"]).json()) == 2


def test_completing_another_users_upload_is_404_and_changes_nothing(backend: Backend, owned: dict) -> None:
    pending = owned["pending"]
    backend.send(pending["upload"], JPEG)
    for asset_id in (owned["ready"], pending["asset_id"]):
        response = backend.client.post(f"/api/uploads/{asset_id}/complete", headers=owned["bob"])
        assert (response.status_code, response.json()) == (404, {"detail": "photo not found"})
    statuses = {a["filename"]: a["status"] for a in backend.client.get(f"/api/shoots/{owned['shoot_id']}/assets", headers=owned["alice"]).json()}
    assert statuses == {"ready.jpg": "ready", "pending.jpg": "pending"}
    # Alice can still finish her own upload.
    assert backend.client.post(f"/api/uploads/{pending['asset_id']}/complete", headers=owned["alice"]).status_code == 200


def test_every_endpoint_needs_a_signed_in_user(backend: Backend, owned: dict) -> None:
    calls = [
        ("POST", "/api/shoots", {"name": "x"}),
        ("GET", "/api/shoots", None),
        ("GET", f"/api/shoots/{owned['shoot_id']}/assets", None),
        ("POST", "/api/uploads/presign", {"shoot_id": owned["shoot_id"], "filename": "a.jpg", "content_type": "image/jpeg", "size": 10}),
        ("POST", f"/api/uploads/{owned['ready']}/complete", None),
    ]
    for method, path, body in calls:
        assert backend.client.request(method, path, json=body).status_code == 401, path


def test_shoot_needs_a_name(backend: Backend, owned: dict) -> None:
    response = backend.client.post("/api/shoots", json={"name": "   "}, headers=owned["bob"])
    assert (response.status_code, response.json()) == (422, {"detail": "Give the shoot a name."})
    created = backend.client.post("/api/shoots", json={"name": " 4 Elm Rd ", "address": " 4 Elm Rd, Springfield "}, headers=owned["bob"])
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["address"], body["photo_count"], body["cover_thumb_url"]) == ("4 Elm Rd", "4 Elm Rd, Springfield", 0, None)
    assert uuid.UUID(body["id"])
