"""What every benchmark needs: a fresh database, settings for a run, photos, workers, a result."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from PIL import Image
from sqlalchemy import func, select

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import upgrade
from luster_app.models import Job, JobStatus
from luster_app.services.jobs import JobOptions, create_batch
from tests.engines_for_tests import InvertEngine
from tests.jobs_support import WorkerProcess, add_photos, add_shoot, user_with_credits

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Section:
    """One benchmark's figures for docs/BENCHMARKS.md: a table, and what it means."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.header) + " |", "|" + " --- |" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + self.notes + [""])


def spread(values: list[float]) -> str:
    """The median of repeated measurements, with their range when there are several."""
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


@dataclass(frozen=True)
class BenchEnv:
    """Where benchmarks run: the PostgreSQL server to create databases on, and a scratch dir."""

    server_url: str
    scratch: Path
    quick: bool = False

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, migrated PostgreSQL database, dropped afterwards."""
        name = f"luster_bench_{uuid.uuid4().hex[:12]}"
        base = self.server_url.rsplit("/", 1)[0]
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            upgrade(f"{base}/{name}")
            yield f"{base}/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def settings(self, database_url: str, **overrides: object) -> Settings:
        data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=self.scratch))
        return Settings(
            _env_file=None, luster_env="test", luster_data_dir=data_dir, database_url=database_url,
            jobs_per_minute_per_user=1_000_000, job_retry_base_seconds=0, job_retry_max_seconds=0,
            worker_poll_seconds=0.05, log_level="WARNING", **overrides,
        )

    def context(self, settings: Settings) -> AppContext:
        return AppContext(settings, db=make_engine(settings.database_url), image_engine=InvertEngine())


def add_bench_photos(context: AppContext, images: list[Image.Image | bytes]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A photographer with one credit per photo, and the photos uploaded to one shoot."""
    user, _ = user_with_credits(context, len(images))
    photos = add_photos(context, user, images, shoot=add_shoot(context, user))
    return user.id, [photo.id for photo in photos]


def queue_jobs(context: AppContext, user_id: uuid.UUID, photo_ids: list[uuid.UUID], *, per_batch: int = 25) -> None:
    """`enhance` jobs for the photos, queued through the API's service a shoot-sized batch at a time."""
    options = JobOptions.for_context(context)
    for start in range(0, len(photo_ids), per_batch):
        with context.session() as session:
            create_batch(
                session=session, user_id=user_id, asset_ids=photo_ids[start : start + per_batch], preset="enhance",
                params={}, options=options,
            )


def settled_jobs(context: AppContext) -> int:
    with context.session() as session:
        query = select(func.count()).select_from(Job).where(Job.status.in_(JobStatus.FINAL))
        return session.execute(query).scalar_one()


def wait_until(condition: Callable[[], bool], *, timeout: float, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish in time")
        time.sleep(poll)


@contextlib.contextmanager
def running_workers(settings: Settings, engine_spec: str, *, processes: int, concurrency: int, log_dir: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes that are up (past imports) when the block starts; stopped after it."""
    workers = [
        WorkerProcess(settings, engine_spec, concurrency=concurrency, log=log_dir / f"worker-{uuid.uuid4().hex[:6]}.log")
        for _ in range(processes)
    ]
    try:
        wait_until(lambda: all("ready" in w.output() for w in workers), timeout=120)
        yield workers
    finally:
        for worker in workers:
            worker.signal()
        for worker in workers:
            worker.wait()
