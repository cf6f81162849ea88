"""The ground every issue builds on: the API answers, the caller is known, credits start at zero."""

from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from tests.conftest import make_user


def test_health_checks_the_database(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_is_503_when_the_database_is_unreachable(settings, tmp_path) -> None:
    broken = AppContext(settings, db=make_engine(f"sqlite:///{tmp_path}/missing-dir/luster.db"))
    with TestClient(create_api(broken)) as test_client:
        response = test_client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def test_openapi_document_lists_the_api(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    assert "/api/health" in document["paths"]
    assert "/api/me" in document["paths"]


def test_me_without_token_is_401(client: TestClient) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_me_with_garbage_token_is_401(client: TestClient) -> None:
    response = client.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401


def test_first_request_creates_user_with_zero_credits(context, client: TestClient) -> None:
    user, headers = make_user(context, "first@example.com")
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.id),
        "email": "first@example.com",
        "is_admin": False,
        "credits": {"balance": 0, "reserved": 0, "available": 0},
    }
