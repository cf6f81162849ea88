"""Every admin route refuses non-admins (403) and anonymous callers (401), whatever routes are added."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.services.admin import set_admin
from tests.admin_support import make_admin
from tests.conftest import make_user

# A plausible value for each path parameter, and a valid body for each route that takes one,
# so a refusal can only come from the admin check, never from validation.
PATH_VALUES = {"user_id": str(uuid.uuid4()), "job_id": str(uuid.uuid4()), "preset": "enhance", "version": "1"}
BODIES = {
    "/api/admin/users/{user_id}/credits": {"delta": 5, "reason": "goodwill"},
    "/api/admin/presets/{preset}/prompt-versions": {"template": "Brighten the room.", "activate": True},
}


def admin_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route under /api/admin, as the OpenAPI document lists them."""
    paths = create_api().openapi()["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() if path.startswith("/api/admin") for method in item)


ADMIN_ROUTES = admin_routes()


@pytest.fixture
def app(settings: Settings, db_url: str) -> Iterator[tuple[AppContext, TestClient]]:
    context = AppContext(settings, db=make_engine(db_url))
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]):  # noqa: ANN202
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    return client.request(method, url, json=BODIES.get(path), headers=headers)


def test_the_console_has_the_routes_the_issue_asks_for() -> None:
    assert ("GET", "/api/admin/stats") in ADMIN_ROUTES
    assert ("POST", "/api/admin/jobs/{job_id}/cancel") in ADMIN_ROUTES
    assert ("POST", "/api/admin/jobs/{job_id}/retry") in ADMIN_ROUTES
    assert len(ADMIN_ROUTES) >= 12
    assert set(PATH_VALUES) >= {name for _, path in ADMIN_ROUTES for name in re.findall(r"\{(\w+)\}", path)}


def test_every_admin_route_refuses_a_photographer_and_an_anonymous_caller(app) -> None:
    context, client = app
    _, photographer = make_user(context)
    answers = {}
    for method, path in ADMIN_ROUTES:
        anonymous, signed_in = _call(client, method, path, {}), _call(client, method, path, photographer)
        answers[(method, path)] = (anonymous.status_code, signed_in.status_code, signed_in.json()["detail"])
    assert {route: codes[:2] for route, codes in answers.items()} == {route: (401, 403) for route in ADMIN_ROUTES}
    assert {detail for _, _, detail in answers.values()} == {"This is for Luster administrators only."}


def test_admin_taken_away_is_refused_on_the_next_request(app) -> None:
    context, client = app
    admin, headers = make_admin(context)
    assert client.get("/api/admin/stats", headers=headers).status_code == 200
    with context.session() as session:
        set_admin(session=session, email=admin.email, is_admin=False)
    assert client.get("/api/admin/stats", headers=headers).status_code == 403
    assert client.get("/api/admin/users", headers=headers).status_code == 403
