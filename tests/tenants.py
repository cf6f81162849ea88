"""Two photographers with real data in one app, and what would betray one to the other.

Used by the authorisation matrix and the API fuzzer: each tenant has a shoot with a ready photo
and a pending upload, credits in the ledger and an open checkout; `secrets` lists the strings
that must never appear in an answer to the other tenant.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import upgrade
from luster_app.models import Asset, User
from luster_app.services.credits import grant_adjustment
from tests.conftest import PHOTOS, cloned_database, make_user, settings_in
from tests.engines_for_tests import InvertEngine
from tests.fixtures_storage import Backend, new_shoot, upload
from worker.worker import Worker

JPEG = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()


@dataclass
class Tenant:
    """A signed-in photographer and the ids of what they own."""

    user: User
    headers: dict[str, str]
    shoot_id: str
    ready_asset_id: str
    pending_asset_id: str
    checkout_session_id: str
    job_id: str
    output_id: str
    spare_asset_id: str  # a ready photo in no bracket group
    bracket_id: str  # a group of two more photos
    storage_keys: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """Strings that identify this tenant's data: none may reach another user."""
        return [
            str(self.user.id), self.user.email, self.shoot_id, self.ready_asset_id, self.pending_asset_id,
            self.checkout_session_id, self.job_id, self.output_id, self.spare_asset_id, self.bracket_id, *self.storage_keys,
        ]


@dataclass
class TwoTenants:
    """The app on local storage with two photographers in it."""

    backend: Backend
    caller: Tenant
    victim: Tenant

    @property
    def client(self) -> TestClient:
        return self.backend.client


def leaked(body: bytes | str, victim: Tenant) -> list[str]:
    """Which of the victim's identifying strings appear in a response body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return [secret for secret in victim.secrets if secret.lower() in text.lower()]


def add_tenant(backend: Backend, label: str) -> Tenant:
    """A photographer with 5 credits, a shoot with one ready photo enhanced by a finished job, one
    pending upload, a spare ready photo and a bracket group of two more, and an open checkout."""
    user, headers = make_user(backend.context, email=f"{label}-{uuid.uuid4().hex[:8]}@example.com")
    with backend.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=5, reason=f"{label} trial credits")
    shoot_id = new_shoot(backend, headers, name=f"{label}'s listing {uuid.uuid4().hex[:8]}")
    ready = upload(backend, headers, shoot_id, JPEG, filename=f"{label}-front.jpg")
    assert ready.complete is not None and ready.complete.status_code == 200, ready.presign.text
    pending = backend.client.post(
        "/api/uploads/presign",
        json={"shoot_id": shoot_id, "filename": f"{label}-back.jpg", "content_type": "image/jpeg", "size": 1234},
        headers=headers,
    )
    assert pending.status_code == 200, pending.text
    spare, *frames = (upload(backend, headers, shoot_id, JPEG, filename=f"{label}-{name}.jpg") for name in ("hall", "bed-1", "bed-2"))
    bracket = backend.client.post(
        f"/api/shoots/{shoot_id}/brackets", json={"asset_ids": [frame.asset_id for frame in frames]}, headers=headers
    )
    assert bracket.status_code == 201, bracket.text
    checkout = backend.client.post("/api/billing/checkout", json={"pack": "starter"}, headers=headers)
    assert checkout.status_code == 200, checkout.text
    job = backend.client.post("/api/jobs", json={"asset_id": ready.asset_id, "preset": "enhance"}, headers=headers)
    assert job.status_code == 201, job.text
    worker_context = AppContext(backend.context.settings, db=backend.context.db, image_engine=InvertEngine())
    assert Worker(worker_context, concurrency=1, drain=True).run() == 0
    [output] = backend.client.get(f"/api/jobs/{job.json()['id']}", headers=headers).json()["outputs"]
    with backend.context.session() as session:
        keys = session.execute(select(Asset.storage_key).where(Asset.user_id == user.id)).scalars().all()
    return Tenant(
        user=user,
        headers=headers,
        shoot_id=shoot_id,
        ready_asset_id=ready.asset_id,
        pending_asset_id=pending.json()["asset_id"],
        checkout_session_id=checkout.json()["session_id"],
        job_id=job.json()["id"],
        output_id=output["asset_id"],
        spare_asset_id=spare.asset_id,
        bracket_id=bracket.json()["id"],
        storage_keys=list(keys),
    )


@contextlib.contextmanager
def _app(settings: Settings, db_url: str) -> Iterator[Backend]:
    context = AppContext(settings, db=make_engine(db_url))
    try:
        with TestClient(create_api(context)) as client:
            yield Backend(name="local", context=context, client=client)
    finally:
        context.db.dispose()


@dataclass(frozen=True)
class _Built:
    """Alice and Bob as built once: the database to copy (a SQLite file, or the name of a
    PostgreSQL database that serves as a template) and the data directory (stored files, the
    signing key their tokens were signed with)."""

    database: str
    data_dir: Path
    caller: Tenant
    victim: Tenant


class TenantWorlds:
    """Alice and Bob built once per database kind, copied for each test that asks for them.

    Building them takes ten uploads, a job and a worker run (about 1.5 s); copying a database and
    a directory takes a tenth of that, and each test still starts from the same untouched state."""

    def __init__(self, root: Path, request: pytest.FixtureRequest) -> None:
        self.root, self.request = root, request
        self.built: dict[str, _Built] = {}
        self.cleanup = contextlib.ExitStack()

    def _build(self, kind: str) -> _Built:
        if kind not in self.built:
            where = self.root / kind
            where.mkdir()
            if kind == "sqlite":
                database = str(where / "luster.db")
                db_url = f"sqlite:///{database}"
                upgrade(db_url)
            else:
                db_url = self.cleanup.enter_context(cloned_database(self.request.getfixturevalue("pg_template")))
                database = db_url.rsplit("/", 1)[1]
            settings = settings_in(where / "data")
            with _app(settings, db_url) as backend:
                caller, victim = add_tenant(backend, "alice"), add_tenant(backend, "bob")
            self.built[kind] = _Built(database=database, data_dir=settings.luster_data_dir, caller=caller, victim=victim)
        return self.built[kind]

    @contextlib.contextmanager
    def copy(self, kind: str, settings: Settings, tmp_path: Path) -> Iterator[TwoTenants]:
        """The built tenants in a database and data directory of this test's own."""
        built = self._build(kind)
        shutil.copytree(built.data_dir, settings.luster_data_dir, dirs_exist_ok=True)
        with contextlib.ExitStack() as stack:
            if kind == "sqlite":
                db_url = f"sqlite:///{tmp_path / 'luster.db'}"
                with contextlib.closing(sqlite3.connect(built.database)) as source, \
                        contextlib.closing(sqlite3.connect(tmp_path / "luster.db")) as target:
                    source.backup(target)
            else:
                db_url = stack.enter_context(cloned_database(built.database))
            with _app(settings, db_url) as backend:
                yield TwoTenants(backend=backend, caller=built.caller, victim=built.victim)


@pytest.fixture(scope="session")
def tenant_worlds(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[TenantWorlds]:
    worlds = TenantWorlds(tmp_path_factory.mktemp("tenants"), request)
    with worlds.cleanup:
        yield worlds


@pytest.fixture(params=["sqlite", "postgres"])
def two_tenants(request: pytest.FixtureRequest, tenant_worlds: TenantWorlds, settings: Settings, tmp_path: Path) -> Iterator[TwoTenants]:
    """Alice (the caller) and Bob (whose data she must never reach), on SQLite and PostgreSQL."""
    with tenant_worlds.copy(request.param, settings, tmp_path) as tenants:
        yield tenants
