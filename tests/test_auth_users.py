"""First sign-in creates exactly one user and one credits row, even when requests race (PostgreSQL and SQLite)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import Credits, User
from luster_app.services.users import ensure_user_for_email

RACERS = 8


@pytest.fixture
def db_context(settings, db_url: str):
    """The app on PostgreSQL, then on SQLite (the embedded default, which locks differently)."""
    ctx = AppContext(settings, db=make_engine(db_url))
    yield ctx
    ctx.db.dispose()


def race(action: Callable[[], object]) -> list[object]:
    """Run `action` in RACERS threads released at the same moment; their results (or exceptions)."""
    start = threading.Barrier(RACERS)
    results: list[object] = []

    def run() -> None:
        start.wait()
        try:
            results.append(action())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def rows(context: AppContext) -> tuple[int, int]:
    with context.session() as session:
        return (
            session.execute(select(func.count()).select_from(User)).scalar_one(),
            session.execute(select(func.count()).select_from(Credits)).scalar_one(),
        )


def test_concurrent_first_requests_create_one_user_and_one_credits_row(db_context: AppContext) -> None:
    user_id = uuid.uuid4()
    token = db_context.auth.issue_access_token(user_id=user_id, email="racer@example.com")
    api = create_api(db_context)

    def first_request() -> tuple[int, str]:
        with TestClient(api) as client:
            answer = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, answer.json().get("id")

    results = race(first_request)
    assert results == [(200, str(user_id))] * RACERS
    assert rows(db_context) == (1, 1)


def test_concurrent_first_sign_ins_by_email_share_one_account(db_context: AppContext) -> None:
    def sign_in() -> uuid.UUID:
        with db_context.session() as session:
            return ensure_user_for_email(session=session, email="Same@Example.com").id

    results = race(sign_in)
    assert len(set(results)) == 1, results
    assert isinstance(results[0], uuid.UUID)
    assert rows(db_context) == (1, 1)
