"""The admin console's users: search and pages, credit adjustments with a reason, `luster admin grant`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import ROOT
from luster_app.services import admin as admin_service
from luster_app.services.errors import Forbidden
from tests.admin_support import make_admin
from tests.conftest import make_user
from tests.jobs_support import user_with_credits


@pytest.fixture
def app(settings: Settings, db_url: str) -> Iterator[tuple[AppContext, TestClient]]:
    context = AppContext(settings, db=make_engine(db_url))
    with TestClient(create_api(context)) as client:
        yield context, client
    context.db.dispose()


def test_users_are_found_by_part_of_their_email_with_their_credits(app) -> None:
    context, client = app
    admin, headers = make_admin(context)
    harbour, _ = make_user(context, "jo@harbour-photo.example")
    make_user(context, "sam@lakeside.example")
    with context.session() as session:
        admin_service.adjust_credits(session=session, admin=admin, user_id=harbour.id, delta=7, reason="welcome pack")

    found = client.get("/api/admin/users", params={"q": "HARBOUR"}, headers=headers).json()

    assert found["total"] == 1
    [row] = found["users"]
    assert (row["email"], row["balance"], row["reserved"], row["available"], row["is_admin"]) == (
        "jo@harbour-photo.example", 7, 0, 7, False,
    )


def test_a_percent_sign_in_the_search_is_a_character_not_a_wildcard(app) -> None:
    context, client = app
    _, headers = make_admin(context)
    make_user(context, "plain@example.com")
    found = client.get("/api/admin/users", params={"q": "%"}, headers=headers).json()
    assert found == {"users": [], "total": 0}


def test_users_come_in_pages_newest_first(app) -> None:
    context, client = app
    _, headers = make_admin(context)
    emails = [make_user(context, f"page-{n}@example.com")[0].email for n in range(5)]

    first = client.get("/api/admin/users", params={"q": "page-", "limit": 2}, headers=headers).json()
    rest = client.get("/api/admin/users", params={"q": "page-", "limit": 2, "offset": 2}, headers=headers).json()
    last = client.get("/api/admin/users", params={"q": "page-", "limit": 2, "offset": 4}, headers=headers).json()

    assert first["total"] == rest["total"] == last["total"] == 5
    listed = [row["email"] for page in (first, rest, last) for row in page["users"]]
    assert sorted(listed) == sorted(emails)
    assert len(set(listed)) == 5


def test_a_grant_and_a_take_move_the_balance_and_show_on_the_photographers_ledger(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    photographer, headers = user_with_credits(context, 3)

    granted = client.post(
        f"/api/admin/users/{photographer.id}/credits", json={"delta": 10, "reason": "Apology for the outage"},
        headers=admin_headers,
    )
    taken = client.post(
        f"/api/admin/users/{photographer.id}/credits", json={"delta": -4, "reason": "Duplicate grant"},
        headers=admin_headers,
    )

    assert granted.status_code == 200 and granted.json()["balance"] == 13
    assert taken.status_code == 200 and taken.json()["balance"] == 9
    assert client.get("/api/me", headers=headers).json()["credits"]["balance"] == 9
    entries = client.get("/api/billing/ledger", headers=headers).json()["entries"]
    assert [(e["kind"], e["delta"], e["note"]) for e in entries[:2]] == [
        ("adjustment", -4, "Duplicate grant"), ("adjustment", 10, "Apology for the outage"),
    ]
    assert entries[0]["ref"] != entries[1]["ref"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"delta": -4, "reason": "too much"}, "at most 3"),
        ({"delta": 5, "reason": "   "}, "Say why"),
        ({"delta": 0, "reason": "nothing"}, "between 1 and"),
    ],
)
def test_an_adjustment_that_makes_no_sense_changes_nothing(app, body, expected) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    photographer, headers = user_with_credits(context, 3)

    response = client.post(f"/api/admin/users/{photographer.id}/credits", json=body, headers=admin_headers)

    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert client.get("/api/me", headers=headers).json()["credits"]["balance"] == 3
    assert len(client.get("/api/billing/ledger", headers=headers).json()["entries"]) == 1


def test_an_adjustment_for_nobody_is_404(app) -> None:
    context, client = app
    _, admin_headers = make_admin(context)
    response = client.post(
        "/api/admin/users/00000000-0000-0000-0000-000000000001/credits", json={"delta": 1, "reason": "x"},
        headers=admin_headers,
    )
    assert response.status_code == 404


def test_the_service_refuses_a_photographer_even_when_called_directly(app) -> None:
    context, _ = app
    photographer, _ = user_with_credits(context, 1)
    # The object says admin; the database does not: the database wins.
    photographer.is_admin = True
    with context.session() as session, pytest.raises(Forbidden):
        admin_service.adjust_credits(session=session, admin=photographer, user_id=photographer.id, delta=100, reason="me")
    with context.session() as session, pytest.raises(Forbidden):
        admin_service.list_users(session=session, admin=photographer)
    with context.session() as session:
        assert admin_service.get_user(session=session, admin=make_admin(context)[0], user_id=photographer.id).balance == 1


def test_luster_admin_grant_opens_the_console_to_a_signed_up_user(settings: Settings, sqlite_url: str) -> None:
    context = AppContext(settings, db=make_engine(sqlite_url))
    user, headers = make_user(context, "new-ops@example.com")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": sqlite_url, "LUSTER_DATA_DIR": str(settings.luster_data_dir)}

    def luster(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "luster_app.cli", "admin", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    with TestClient(create_api(context)) as client:
        assert client.get("/api/admin/stats", headers=headers).status_code == 403
        granted = luster("grant", "New-Ops@example.com")
        assert granted.returncode == 0, granted.stderr
        assert "new-ops@example.com is now an admin" in granted.stdout
        assert client.get("/api/admin/stats", headers=headers).status_code == 200
        assert client.get("/api/me", headers=headers).json()["is_admin"] is True
        assert luster("revoke", "new-ops@example.com").returncode == 0
        assert client.get("/api/admin/stats", headers=headers).status_code == 403
        unknown = luster("grant", "nobody@example.com")
    assert unknown.returncode == 1
    assert "sign in once first" in unknown.stderr
    context.db.dispose()

