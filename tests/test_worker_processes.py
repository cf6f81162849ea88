"""Real worker processes: many at once, killed, stopped, and through database restarts."""

from __future__ import annotations

import io
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from luster_app.context import AppContext
from luster_app.db import is_postgres
from luster_app.imaging import has_gps
from luster_app.models import Asset, AssetKind, Job, JobEvent, utcnow
from luster_app.services.jobs import JobOptions, create_batch
from tests.conftest import PHOTOS
from tests.engines_for_tests import InvertEngine, indexed_image, recorded_calls
from tests.jobs_support import (
    WorkerProcess, add_photos, add_shoot, balance, job_charges, jobs_by_status, outputs_of, user_with_credits, wait_for,
    worker_context, worker_settings,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, InvertEngine())
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; any still running at the end are killed."""
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.stop()


def _start(workers: list[WorkerProcess], context: AppContext, engine_spec: str, tmp_path: Path, **kwargs) -> WorkerProcess:
    overrides = kwargs.pop("settings", {})
    settings = worker_settings(context.settings, context.db.url.render_as_string(hide_password=False), **overrides)
    process = WorkerProcess(settings, engine_spec, log=tmp_path / f"worker-{len(workers)}.log", **kwargs)
    workers.append(process)
    return process


def _queue(context: AppContext, *, users: int, jobs_each: int, spare_credits: int = 0) -> dict[uuid.UUID, int]:
    """`users` photographers with `jobs_each` queued jobs each; returns their starting balances.

    Photo number n carries index n in its pixels, so RecordingEngine can tell the jobs apart.
    """
    balances = {}
    for number in range(users):
        credits = jobs_each + spare_credits + number
        user, _ = user_with_credits(context, credits)
        first = number * jobs_each
        photos = add_photos(context, user, [indexed_image(i) for i in range(first, first + jobs_each)], shoot=add_shoot(context, user))
        with context.session() as session:
            create_batch(
                session=session, user_id=user.id, asset_ids=[p.id for p in photos], preset="enhance", params={},
                options=JobOptions.for_context(context),
            )
        balances[user.id] = credits
    return balances


def _assert_all_succeeded_and_charged_once(context: AppContext, balances: dict[uuid.UUID, int], jobs_each: int) -> None:
    total = len(balances) * jobs_each
    assert jobs_by_status(context) == {"succeeded": total}
    assert job_charges(context) == total
    for user_id, starting in balances.items():
        assert balance(context, user_id) == starting - jobs_each
    with context.session() as session:
        per_job = Counter(session.execute(select(Asset.job_id).where(Asset.kind == AssetKind.OUTPUT)).scalars())
    assert len(per_job) == total and set(per_job.values()) == {1}



def test_four_workers_run_every_job_exactly_once(context, workers, tmp_path) -> None:
    users, jobs_each = (10, 100) if is_postgres(context.db) else (4, 50)
    calls = tmp_path / "calls"
    # All four up before the jobs arrive, and each call takes a moment so the slots, not the
    # machine's scheduling, decide who works: else three fast workers can take every job.
    processes = [_start(workers, context, f"record:{calls}:0.05", tmp_path, concurrency=4) for _ in range(4)]
    wait_for(lambda: all("worker ready" in process.output() for process in processes), "the workers to start", timeout=120)
    balances = _queue(context, users=users, jobs_each=jobs_each)
    wait_for(lambda: jobs_by_status(context) == {"succeeded": users * jobs_each}, "every job to succeed", timeout=600)
    for process in processes:
        process.signal(signal.SIGTERM)
    for process in processes:
        assert process.wait() == 0, process.output()

    assert sorted(recorded_calls(calls)) == list(range(users * jobs_each))  # each engine call exactly once
    assert len(list(calls.glob("*.calls"))) == 4  # and all four processes shared the work
    _assert_all_succeeded_and_charged_once(context, balances, jobs_each)
    with context.session() as session:
        assert set(session.execute(select(Job.attempts)).scalars()) == {1}


def test_a_killed_workers_job_is_finished_by_another_after_its_lease(context, workers, tmp_path) -> None:
    balances = _queue(context, users=1, jobs_each=1)
    [user_id] = balances
    calls = tmp_path / "calls"
    doomed = _start(workers, context, f"record:{calls}:60", tmp_path, concurrency=1)
    wait_for(lambda: recorded_calls(calls) == [0], "the first worker to be mid-job")

    doomed.signal(signal.SIGKILL)
    doomed.wait()
    with context.session() as session:
        lease_expires_at = session.execute(select(Job.lease_expires_at)).scalar_one()
    wait_for(lambda: utcnow() > lease_expires_at, "the lease to expire")
    rescuer = _start(workers, context, f"record:{calls}", tmp_path, concurrency=1, drain=True)
    assert rescuer.wait() == 0, rescuer.output()

    assert recorded_calls(calls) == [0, 0]  # the killed attempt, then the one that finished
    _assert_all_succeeded_and_charged_once(context, balances, 1)
    with context.session() as session:
        job = session.execute(select(Job)).scalar_one()
        events = list(session.execute(select(JobEvent.type).order_by(JobEvent.id)).scalars())
    assert job.attempts == 2
    assert events == ["created", "claimed", "lease_expired", "claimed", "succeeded"]
    assert balance(context, user_id) == balances[user_id] - 1


def test_sigterm_lets_jobs_in_flight_finish(context, workers, tmp_path) -> None:
    _queue(context, users=1, jobs_each=6)
    calls = tmp_path / "calls"
    process = _start(workers, context, f"record:{calls}:1.5", tmp_path, concurrency=2)
    wait_for(lambda: len(recorded_calls(calls)) == 2, "two jobs in flight")

    process.signal(signal.SIGTERM)
    assert process.wait() == 0, process.output()

    in_flight = len(recorded_calls(calls))
    with context.session() as session:
        jobs = session.execute(select(Job.status, Job.attempts)).all()
    assert Counter(status for status, _ in jobs) == {"succeeded": in_flight, "queued": 6 - in_flight}  # none processing
    assert {attempts for status, attempts in jobs if status == "queued"} == {0}  # never claimed after SIGTERM
    assert job_charges(context) == in_flight


def test_sigterm_releases_jobs_that_outlast_the_grace_period(context, workers, tmp_path) -> None:
    balances = _queue(context, users=1, jobs_each=3)
    [user_id] = balances
    calls = tmp_path / "calls"
    process = _start(workers, context, f"record:{calls}:60", tmp_path, concurrency=2, settings={"worker_grace_seconds": 0.5})
    wait_for(lambda: len(recorded_calls(calls)) == 2, "two jobs in flight")

    process.signal(signal.SIGTERM)
    assert process.wait() == 0, process.output()

    with context.session() as session:
        jobs = list(session.execute(select(Job)).scalars())
        released = session.execute(select(func.count()).select_from(JobEvent).where(JobEvent.type == "released")).scalar_one()
    assert {(job.status, job.attempts, job.lease_owner) for job in jobs} == {("queued", 0, None)}
    assert released == 2
    assert job_charges(context) == 0
    assert balance(context, user_id) == balances[user_id]
    assert not list((context.settings.luster_data_dir / "storage").rglob("outputs/*"))


def test_a_second_signal_stops_the_worker_at_once(context, workers, tmp_path) -> None:
    _queue(context, users=1, jobs_each=1)
    calls = tmp_path / "calls"
    process = _start(workers, context, f"record:{calls}:60", tmp_path, concurrency=1, settings={"worker_grace_seconds": 120})
    wait_for(lambda: recorded_calls(calls) == [0], "a job in flight")

    process.signal(signal.SIGTERM)
    wait_for(lambda: "finishing jobs in flight" in process.output(), "the first signal to be handled")
    process.signal(signal.SIGTERM)

    assert process.wait(timeout=30) == -signal.SIGTERM
    assert jobs_by_status(context) == {"processing": 1}  # its lease runs out; another worker takes it
    assert job_charges(context) == 0


def _database_losses(process: WorkerProcess) -> int:
    """How often this worker has logged a failed database call (finish, claim or heartbeat)."""
    output = process.output()
    return sum(output.count(m) for m in ("database connection lost", "database unavailable", "lease heartbeat failed"))


def test_workers_carry_on_through_database_restarts(settings, restartable_pg, workers, tmp_path) -> None:
    """A private PostgreSQL server (the shared one must stay up) is really restarted twice while two
    workers run 200 jobs: they find it gone, reconnect, and every job is charged exactly once."""
    context = worker_context(settings, restartable_pg.url, InvertEngine())
    balances = _queue(context, users=4, jobs_each=50)
    calls = tmp_path / "calls"
    # A job in flight waits out the restart: its finish is retried for up to half a lease
    # (JobRunner.db) and its lease, no longer heartbeated, must not run out meanwhile. The
    # 3-second test lease allows 1.5 s, less than a stop and a start take on a busy machine.
    restart_safe = {"job_lease_seconds": 30}
    processes = [
        _start(workers, context, f"record:{calls}:0.1", tmp_path, concurrency=4, drain=True, settings=restart_safe)
        for _ in range(2)
    ]
    for busy in (8, 60):  # the second restart once the workers have got going again
        wait_for(lambda: len(recorded_calls(calls)) >= busy, "the workers to be busy", timeout=120)  # noqa: B023
        seen = [_database_losses(process) for process in processes]
        restartable_pg.stop()
        time.sleep(1)
        wait_for(
            lambda: all(_database_losses(p) > n for p, n in zip(processes, seen, strict=True)),  # noqa: B023
            "every worker to find the database gone", timeout=120,
        )
        restartable_pg.start()
    for process in processes:
        assert process.wait(timeout=300) == 0, process.output()

    assert set(recorded_calls(calls)) == set(range(200))
    _assert_all_succeeded_and_charged_once(context, balances, 50)
    with context.session() as session:
        keys = session.execute(select(Asset.storage_key).where(Asset.kind == AssetKind.OUTPUT)).scalars().all()
    assert all(context.storage.head(key) is not None for key in keys)  # every charged output is stored
    context.db.dispose()


def test_luster_worker_enhances_a_real_photo_on_the_embedded_defaults(settings, sqlite_url, workers, tmp_path) -> None:
    """`luster worker --drain` as `luster serve` starts it: SQLite, local storage, the classic engine."""
    context = worker_context(settings, sqlite_url)
    user, _ = user_with_credits(context, 2)
    [photo] = add_photos(context, user, [(PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()])
    with context.session() as session:
        [job] = create_batch(
            session=session, user_id=user.id, asset_ids=[photo.id], preset="sky", params={"style": "clear_blue"},
            options=JobOptions.for_context(context),
        )
    assert job.engine == "classic"

    process = WorkerProcess(context.settings, None, concurrency=2, drain=True, log=tmp_path / "luster-worker.log")
    workers.append(process)
    assert process.wait(timeout=300) == 0, process.output()

    [output] = outputs_of(context, job.id)
    data = context.storage.get_bytes(output.storage_key)
    assert Image.open(io.BytesIO(data)).size == (640, 480) == (output.width, output.height)
    assert not has_gps(data)
    assert balance(context, user.id) == 1
    context.db.dispose()
