"""Helpers for the admin tests: an admin and their headers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from luster_app.context import AppContext
from luster_app.models import User
from luster_app.services.admin import set_admin
from tests.conftest import make_user


def make_admin(context: AppContext) -> tuple[User, dict[str, str]]:
    """A signed-up user made admin as `luster admin grant` does, and their Authorization header."""
    user, headers = make_user(context)
    with context.session() as session:
        return set_admin(session=session, email=user.email), headers


def queue_job(client: TestClient, headers: dict[str, str], photo_id, preset: str = "enhance") -> str:  # noqa: ANN001
    """The photographer presses "Enhance" on one photo: the new job's id."""
    response = client.post("/api/jobs", json={"asset_id": str(photo_id), "preset": preset}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]
