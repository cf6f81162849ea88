"""Shared fixtures: settings in a temp data dir, SQLite and real PostgreSQL, the API, users, S3."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import ROOT, upgrade
from luster_app.models import User
from luster_app.services.users import ensure_user

pytest_plugins = ["tests.fixtures_storage", "tests.fixtures_postgres"]

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PHOTOS = ROOT / "tests" / "data" / "photos"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if {"pg_url", "restartable_pg"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


# The browser tests, and the modules besides them that build or serve the compiled frontend (`.web`,
# one per checkout): with `pytest -n` (pytest-xdist) one process runs all of them, in turn.
SHARE_THE_FRONTEND = {"test_scaleout.py", "test_metrics.py"}


def shares_the_frontend(nodeid: str) -> bool:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return module.endswith("_browser.py") or module in SHARE_THE_FRONTEND


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Every other test goes to whichever process is free (`--dist load`); those that share the
    frontend go to one process as one unit. (pytest-xdist's own `loadgroup` marks groups by
    renaming tests, which the pytest in use no longer lets it do.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FrontendInOneProcess(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "frontend" if shares_the_frontend(nodeid) else nodeid

    return FrontendInOneProcess(config, log) if config.getvalue("dist") == "load" else None


def unavailable(reason: str) -> None:
    """Skip locally when a real dependency is missing; under CI=true that is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this suite must run, not skip)")
    pytest.skip(reason)


# --- PostgreSQL: one migrated template per schema version, a fresh clone per test ---

def _admin_engine() -> sa.Engine:
    return sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "alembic" / "versions").glob("*.py")) + [ROOT / "luster_app" / "models.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def pg_template() -> str:
    """The name of a PostgreSQL database at the latest migration, to clone per test."""
    try:
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL not reachable at TEST_DATABASE_URL: {exc.__class__.__name__}")
    name = f"luster_tpl_{_migrations_fingerprint()}"
    with admin.connect() as conn:
        # Serialise template creation between concurrent test runs on this machine.
        conn.execute(sa.text("SELECT pg_advisory_lock(7391)"))
        try:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                upgrade(TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}")
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(7391)"))
    admin.dispose()
    return name


@contextlib.contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database copied from `template` (which no one may be connected
    to), dropped afterwards."""
    name = f"luster_t_{uuid.uuid4().hex[:16]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test alone."""
    with cloned_database(pg_template) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file."""
    url = f"sqlite:///{tmp_path / 'luster.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


# --- the app ---

def settings_in(data_dir: Path) -> Settings:
    return Settings(_env_file=None, luster_env="test", luster_data_dir=data_dir, app_url="http://testserver")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path / "data")


@pytest.fixture
def context(settings: Settings, sqlite_url: str) -> Iterator[AppContext]:
    """An app context on a fresh SQLite database; tests on PostgreSQL use `pg_context`."""
    ctx = AppContext(settings, db=make_engine(sqlite_url))
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def pg_context(settings: Settings, pg_url: str) -> Iterator[AppContext]:
    ctx = AppContext(settings, db=make_engine(pg_url))
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def client(context: AppContext) -> Iterator[TestClient]:
    with TestClient(create_api(context)) as test_client:
        yield test_client


def make_user(context: AppContext, email: str | None = None) -> tuple[User, dict[str, str]]:
    """A signed-up user and the Authorization header of a local session token for them."""
    email = email or f"photographer-{uuid.uuid4().hex[:8]}@example.com"
    with context.session() as session:
        user = ensure_user(session=session, user_id=uuid.uuid4(), email=email)
    token = context.auth.issue_access_token(user_id=user.id, email=user.email)
    return user, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user_and_headers(context: AppContext) -> tuple[User, dict[str, str]]:
    return make_user(context)
