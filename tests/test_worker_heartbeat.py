"""Workers beat: a dead worker's jobs run again long before their lease runs out, a live worker's
slow jobs are never taken from it, and a worker presumed dead that comes back writes nothing.

The lease here is ten minutes, so every takeover below is the heartbeat's doing, not the lease's.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from luster_app.context import AppContext
from luster_app.models import Asset, AssetKind, CreditLedger, Credits, Job, JobEvent, JobStatus, WorkerHeartbeat, utcnow
from luster_app.services.job_queue import claim_jobs, worker_beat, worker_gone
from luster_app.services.jobs import JobOptions, create_batch
from tests.engines_for_tests import InvertEngine, indexed_image, recorded_calls
from tests.jobs_support import WorkerProcess, add_photos, add_shoot, jobs_by_status, user_with_credits, wait_for, worker_context

JOBS = 3
LEASE_SECONDS = 600
BEATS = {"job_lease_seconds": LEASE_SECONDS, "worker_heartbeat_seconds": 0.3, "worker_dead_after_seconds": 3.0}


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, InvertEngine(), **BEATS)
    yield ctx
    ctx.db.dispose()



def _queue_jobs(context: AppContext) -> uuid.UUID:
    """A photographer with exactly the credits for the jobs, and the jobs queued."""
    user, _ = user_with_credits(context, JOBS)
    photos = add_photos(context, user, [indexed_image(i) for i in range(JOBS)], shoot=add_shoot(context, user))
    with context.session() as session:
        create_batch(
            session=session, user_id=user.id, asset_ids=[p.id for p in photos], preset="enhance", params={},
            options=JobOptions.for_context(context),
        )
    return user.id


class Workers:
    """Worker processes of one test, all stopped at its end."""

    def __init__(self, context: AppContext, tmp_path: Path) -> None:
        self.settings = context.settings
        self.tmp_path = tmp_path
        self.calls = tmp_path / "calls"
        self.started: list[WorkerProcess] = []

    def start(self, seconds: float = 0) -> WorkerProcess:
        process = WorkerProcess(
            self.settings, f"record:{self.calls}:{seconds}", concurrency=JOBS, log=self.tmp_path / f"worker-{len(self.started)}.log"
        )
        self.started.append(process)
        return process

    def calls_of(self, process: WorkerProcess) -> list[int]:
        path = self.calls / f"{process.process.pid}.calls"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def stop_all(self) -> None:
        for process in self.started:
            if process.process.poll() is None:
                process.signal(signal.SIGCONT)
            process.stop()


@pytest.fixture
def workers(context, tmp_path) -> Iterator[Workers]:
    group = Workers(context, tmp_path)
    yield group
    group.stop_all()


def _leases(context: AppContext) -> dict[uuid.UUID, object]:
    with context.session() as session:
        return dict(session.execute(select(Job.id, Job.lease_expires_at).where(Job.status == JobStatus.PROCESSING)).all())


def _claims(context: AppContext) -> dict[uuid.UUID, list]:
    """Each job's `claimed` events, in order."""
    with context.session() as session:
        rows = session.execute(select(JobEvent.job_id, JobEvent.at).where(JobEvent.type == "claimed").order_by(JobEvent.id)).all()
    claims: dict[uuid.UUID, list] = {}
    for job_id, at in rows:
        claims.setdefault(job_id, []).append(at)
    return claims


def _money_and_outputs(context: AppContext) -> tuple[Counter, list[int], list[Asset]]:
    with context.session() as session:
        charges = Counter(session.execute(select(CreditLedger.ref).where(CreditLedger.kind == "job")).scalars())
        balances = list(session.execute(select(Credits.balance)).scalars())
        outputs = list(session.execute(select(Asset).where(Asset.kind == AssetKind.OUTPUT)).scalars())
    return charges, balances, outputs


@pytest.mark.slow
def test_a_killed_workers_jobs_run_again_before_their_lease_runs_out(context, workers) -> None:
    _queue_jobs(context)
    doomed = workers.start(seconds=LEASE_SECONDS)  # its engine calls would outlast the lease
    wait_for(lambda: len(workers.calls_of(doomed)) == JOBS, "every job in flight")
    leases = _leases(context)
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    rescuer = workers.start()
    wait_for(lambda: set(jobs_by_status(context)) == {"succeeded"}, "the jobs to succeed")

    claims = _claims(context)
    assert set(claims) == set(leases) and all(len(at) == 2 for at in claims.values())
    assert all(claims[job_id][1] < expires for job_id, expires in leases.items())  # taken over, not timed out
    assert sorted(workers.calls_of(rescuer)) == list(range(JOBS))
    charges, balances, outputs = _money_and_outputs(context)
    assert len(charges) == JOBS and set(charges.values()) == {1}
    assert balances == [0] and len(outputs) == JOBS


@pytest.mark.slow
def test_a_live_workers_slow_engine_calls_are_never_taken_over(context, workers) -> None:
    _queue_jobs(context)
    slow = workers.start(seconds=4 * BEATS["worker_dead_after_seconds"])
    wait_for(lambda: len(workers.calls_of(slow)) == JOBS, "every job in flight")
    other = workers.start()  # idle beside it, claiming all along
    wait_for(lambda: set(jobs_by_status(context)) == {"succeeded"}, "the jobs to succeed")

    assert sorted(recorded_calls(workers.calls)) == list(range(JOBS))  # each photo edited once, by `slow`
    assert workers.calls_of(other) == []
    assert all(len(at) == 1 for at in _claims(context).values())
    for process in (slow, other):
        process.signal(signal.SIGTERM)
        assert process.wait() == 0, process.output()
    with context.session() as session:
        assert list(session.execute(select(WorkerHeartbeat.id)).scalars()) == []  # both left cleanly


@pytest.mark.slow
def test_a_worker_presumed_dead_that_comes_back_writes_nothing(context, workers) -> None:
    _queue_jobs(context)
    frozen = workers.start(seconds=3 * BEATS["worker_dead_after_seconds"])
    wait_for(lambda: len(workers.calls_of(frozen)) == JOBS, "every job in flight")
    frozen.signal(signal.SIGSTOP)  # as if it lost the database: no beats, no finishes
    rescuer = workers.start()
    wait_for(lambda: set(jobs_by_status(context)) == {"succeeded"}, "the rescuer to finish the jobs")
    charges_before, _, outputs_before = _money_and_outputs(context)

    frozen.signal(signal.SIGCONT)  # its engine calls end, and it tries to finish each job
    wait_for(lambda: frozen.output().count("lease lost") >= JOBS, "the late finishes to be refused")
    for process in (frozen, rescuer):
        process.signal(signal.SIGTERM)
        assert process.wait() == 0, process.output()

    assert sorted(workers.calls_of(frozen)) == sorted(workers.calls_of(rescuer)) == list(range(JOBS))
    charges, balances, outputs = _money_and_outputs(context)
    assert charges == charges_before and set(charges.values()) == {1} and balances == [0]
    assert {o.storage_key for o in outputs} == {o.storage_key for o in outputs_before}
    with context.session() as session:
        thumbs = set(session.execute(select(Asset.storage_key).where(Asset.kind == AssetKind.THUMB)).scalars())
    stored = {str(p.relative_to(context.storage.root)) for p in context.storage.root.rglob("outputs/*") if p.is_file()}
    assert stored == {key for key in {o.storage_key for o in outputs} | thumbs if "/outputs/" in key}


def _processing_job(context: AppContext, owner: str) -> uuid.UUID:
    """One job held by `owner` under a lease that is far from expiring."""
    _queue_jobs(context)
    with context.session() as session:
        job_id = session.execute(select(Job.id).limit(1)).scalar_one()
        session.execute(update(Job).where(Job.id != job_id).values(status=JobStatus.CANCELED))
        session.execute(
            update(Job).where(Job.id == job_id).values(
                status=JobStatus.PROCESSING, lease_owner=owner, lease_token="a" * 32, attempts=1,
                lease_expires_at=utcnow() + timedelta(seconds=LEASE_SECONDS),
            )
        )
        session.commit()
    return job_id


def _claim(context: AppContext, dead_after: float | None = 20) -> list[uuid.UUID]:
    with context.session() as session:
        claimed = claim_jobs(session=session, owner="rescuer", limit=5, lease_seconds=LEASE_SECONDS, dead_after_seconds=dead_after)
    return [c.job.id for c in claimed]


def test_claims_take_over_only_the_jobs_of_workers_not_seen_lately(context) -> None:
    job_id = _processing_job(context, "worker-a")
    with context.session() as session:
        worker_beat(session=session, worker_id="worker-a", forget_after_seconds=LEASE_SECONDS)
    assert _claim(context) == []  # seen just now
    with context.session() as session:
        session.execute(update(WorkerHeartbeat).values(last_seen=utcnow() - timedelta(seconds=30)))
        session.commit()
    assert _claim(context, dead_after=None) == []  # a claim without a heartbeat limit waits for the lease
    assert _claim(context) == [job_id]
    with context.session() as session:
        job = session.get(Job, job_id)
        assert (job.lease_owner, job.attempts) == ("rescuer", 2)


def test_a_worker_that_never_beat_keeps_its_jobs_until_the_lease(context) -> None:
    _processing_job(context, "worker-without-row")
    assert _claim(context) == []


def test_beats_forget_long_gone_workers_and_a_clean_stop_leaves(context) -> None:
    with context.session() as session:
        for name in ("gone", "stopping", "alive"):
            worker_beat(session=session, worker_id=name, forget_after_seconds=LEASE_SECONDS)
        session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.id == "gone").values(last_seen=utcnow() - timedelta(hours=1)))
        session.commit()
        worker_beat(session=session, worker_id="alive", forget_after_seconds=LEASE_SECONDS)
        worker_gone(session=session, worker_id="stopping")
        assert list(session.execute(select(WorkerHeartbeat.id)).scalars()) == ["alive"]
