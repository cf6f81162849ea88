"""Helpers for the jobs and worker tests: photos as an upload leaves them, credits, worker processes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import ROOT
from luster_app.models import Asset, AssetKind, AssetStatus, CreditLedger, Credits, Job, Shoot, User
from luster_app.services.credits import grant_adjustment
from luster_app.storage.keys import EXTENSIONS, original_key
from tests.conftest import make_user

# Settings a test worker runs with: quick polls and retries, a short lease so a dead worker's
# job is taken over within seconds.
FAST_WORKER = {
    "job_lease_seconds": 3,
    "job_retry_base_seconds": 0,  # a retry is due at once, so a draining worker takes it
    "job_retry_max_seconds": 0,
    "worker_poll_seconds": 0.05,
    "worker_grace_seconds": 20,
}


def worker_settings(settings: Settings, database_url: str, **overrides: Any) -> Settings:
    return settings.model_copy(update={"database_url": database_url, **FAST_WORKER, **overrides})


def worker_context(settings: Settings, database_url: str, engine: Any = None, **overrides: Any) -> AppContext:
    """A context for an in-process worker on `database_url` with `engine` (None: the configured one)."""
    worker = worker_settings(settings, database_url, **overrides)
    providers = {"image_engine": engine} if engine is not None else {}
    return AppContext(worker, db=make_engine(database_url), **providers)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def add_shoot(context: AppContext, user: User, name: str = "12 Harbour Street") -> Shoot:
    with context.session() as session:
        shoot = Shoot(user_id=user.id, name=name)
        session.add(shoot)
        session.commit()
        return shoot


def _encoded(photo: Image.Image | bytes) -> tuple[bytes, str, int, int]:
    """The file to store, its format and size: an Image becomes a PNG, bytes are kept as they are."""
    if isinstance(photo, Image.Image):
        return png_bytes(photo), "PNG", photo.width, photo.height
    header = Image.open(io.BytesIO(photo))
    return photo, header.format, header.width, header.height


def add_photos(
    context: AppContext, user: User, photos: list[Image.Image | bytes], *, shoot: Shoot | None = None,
    status: str = AssetStatus.READY,
) -> list[Asset]:
    """Original photos in storage and their asset rows, as verified uploads leave them."""
    shoot = shoot or add_shoot(context, user)
    assets = []
    for photo in photos:
        data, image_format, width, height = _encoded(photo)
        asset_id = uuid.uuid4()
        key = original_key(user.id, shoot.id, asset_id, image_format)
        content_type = f"image/{image_format.lower()}"
        context.storage.put_bytes(key, data, content_type=content_type)
        assets.append(
            Asset(
                id=asset_id, shoot_id=shoot.id, user_id=user.id, kind=AssetKind.ORIGINAL, storage_key=key,
                filename=f"photo-{asset_id.hex[:6]}.{EXTENSIONS[image_format]}", content_type=content_type,
                bytes=len(data), width=width, height=height, status=status,
            )
        )
    with context.session() as session:
        session.add_all(assets)
        session.commit()
    return assets


def add_photo(context: AppContext, user: User, image: Image.Image, **kwargs: Any) -> Asset:
    return add_photos(context, user, [image], **kwargs)[0]


def user_with_credits(context: AppContext, credits: int) -> tuple[User, dict[str, str]]:
    user, headers = make_user(context)
    if credits:
        with context.session() as session:
            grant_adjustment(session=session, user_id=user.id, delta=credits, reason="test credits")
    return user, headers


def balance(context: AppContext, user_id: uuid.UUID) -> int:
    with context.session() as session:
        return session.execute(select(Credits.balance).where(Credits.user_id == user_id)).scalar_one()


def job_charges(context: AppContext, user_id: uuid.UUID | None = None) -> int:
    """How many `job` ledger rows there are (of one user, or of everyone)."""
    query = select(func.count()).select_from(CreditLedger).where(CreditLedger.kind == "job")
    if user_id is not None:
        query = query.where(CreditLedger.user_id == user_id)
    with context.session() as session:
        return session.execute(query).scalar_one()


def jobs_by_status(context: AppContext) -> dict[str, int]:
    with context.session() as session:
        return dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())


def outputs_of(context: AppContext, job_id: uuid.UUID | str) -> list[Asset]:
    with context.session() as session:
        query = select(Asset).where(Asset.job_id == uuid.UUID(str(job_id)), Asset.kind == AssetKind.OUTPUT)
        return list(session.execute(query).scalars())


class WorkerProcess:
    """A worker in a child process: `tests/worker_process.py` (the production Worker with a test
    engine) or, with no engine spec, `luster worker` itself."""

    def __init__(
        self, settings: Settings, engine_spec: str | None, *, concurrency: int = 4, drain: bool = False, log: Path
    ) -> None:
        env = {**os.environ, **_environment(settings), "PYTHONPATH": str(ROOT)}
        if engine_spec is None:
            args = [sys.executable, "-m", "luster_app.cli", "worker"]
        else:
            args = [sys.executable, str(ROOT / "tests" / "worker_process.py"), engine_spec]
        args += ["--concurrency", str(concurrency)] + (["--drain"] if drain else [])
        self.log_path = log
        self._log = log.open("ab")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _environment(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables a child process reads them from."""
    return {
        name.upper(): json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        for name, value in settings.model_dump().items()
    }


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
