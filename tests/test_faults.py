"""Faults during real runs: workers killed at random moments, the S3 server going away and coming
back, the database restarting under the API. Nothing is lost, nothing is charged twice,
every job ends final, and no job is charged without its output in storage.

(Workers carrying on through PostgreSQL restarts: tests/test_worker_processes.py.)
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import select

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import Asset, AssetKind, CreditLedger, Job, JobEvent, JobStatus
from luster_app.services.jobs import JobOptions, create_batch
from tests.conftest import make_user, unavailable
from tests.engines_for_tests import indexed_image, recorded_calls
from tests.fixtures_storage import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, free_port, s3_settings
from tests.jobs_support import WorkerProcess, add_photos, add_shoot, balance, user_with_credits, wait_for, worker_settings

pytestmark = pytest.mark.slow

FINAL = set(JobStatus.FINAL)



def _queue(context: AppContext, *, users: int, jobs_each: int) -> dict[uuid.UUID, int]:
    """`users` photographers with `jobs_each` queued jobs each (photo n carries index n); their balances."""
    balances = {}
    for number in range(users):
        user, _ = user_with_credits(context, jobs_each + 3)
        first = number * jobs_each
        photos = add_photos(context, user, [indexed_image(i) for i in range(first, first + jobs_each)], shoot=add_shoot(context, user))
        with context.session() as session:
            create_batch(session=session, user_id=user.id, asset_ids=[p.id for p in photos], preset="enhance", params={},
                         options=JobOptions.for_context(context))
        balances[user.id] = jobs_each + 3
    return balances


def _jobs(context: AppContext) -> list[Job]:
    with context.session() as session:
        return list(session.execute(select(Job)).scalars())


def _all_final(context: AppContext) -> bool:
    return all(job.status in FINAL for job in _jobs(context))


def _holds_a_job(context: AppContext, worker: WorkerProcess) -> bool:
    """Whether the worker process is processing a job (its lease owner names its pid)."""
    with context.session() as session:
        held = select(Job.id).where(Job.status == JobStatus.PROCESSING, Job.lease_owner.like(f"%:{worker.process.pid}:%"))
        return session.execute(held.limit(1)).first() is not None


def _assert_ledger_matches_outputs(context: AppContext, balances: dict[uuid.UUID, int]) -> list[Job]:
    """Every job final; each succeeded job charged once and holding exactly one output; no other charge."""
    jobs = _jobs(context)
    assert {job.status for job in jobs} <= FINAL, Counter(job.status for job in jobs)
    succeeded = {job.id for job in jobs if job.status == JobStatus.SUCCEEDED}
    with context.session() as session:
        charged = Counter(session.execute(select(CreditLedger.ref).where(CreditLedger.kind == "job")).scalars())
        outputs = Counter(session.execute(select(Asset.job_id).where(Asset.kind == AssetKind.OUTPUT)).scalars())
    assert set(charged.values()) <= {1} and {uuid.UUID(ref) for ref in charged} == succeeded
    assert set(outputs) == succeeded and set(outputs.values()) <= {1}
    for user_id, starting in balances.items():
        assert balance(context, user_id) == starting - sum(1 for job in jobs if job.user_id == user_id and job.id in succeeded)
    return jobs


# --- SIGKILL ---

def test_workers_killed_at_random_moments_lose_nothing_and_charge_nothing_twice(settings, pg_url, tmp_path) -> None:
    """Two workers run 300 jobs; again and again one of them is SIGKILLed at a random moment and
    replaced. Jobs of a killed worker are taken over when their lease ends."""
    rng = random.Random(300)
    context = AppContext(worker_settings(settings, pg_url), db=make_engine(pg_url))
    balances = _queue(context, users=3, jobs_each=100)
    calls = tmp_path / "calls"
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        process = WorkerProcess(context.settings, f"record:{calls}:0.05", concurrency=4, log=tmp_path / f"w{len(started)}.log")
        started.append(process)
        return process

    kills = 0
    try:
        running = [start(), start()]
        while not _all_final(context) and kills < 12:
            time.sleep(rng.uniform(0.3, 2.0))
            victim = running.pop(rng.randrange(len(running)))
            # Killed in the middle of a job, however slowly a loaded machine starts a worker.
            wait_for(lambda: _holds_a_job(context, victim) or _all_final(context), "the worker to take a job", timeout=60)
            victim.signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            running.append(start())
        wait_for(lambda: _all_final(context), "every job to end", timeout=300)
    finally:
        for process in started:
            process.stop()

    jobs = _assert_ledger_matches_outputs(context, balances)
    with context.session() as session:
        taken_over = session.execute(select(sa.func.count()).select_from(JobEvent).where(JobEvent.type == "lease_expired")).scalar_one()
    assert kills >= 3 and taken_over >= 1  # the kills did land in the middle of jobs
    assert set(recorded_calls(calls)) == set(range(300))  # every photo was edited (some more than once)
    assert Counter(job.status for job in jobs)[JobStatus.SUCCEEDED] >= 295  # a job killed on every attempt may fail, uncharged
    context.db.dispose()


# --- the S3 server stopped and started again ---

@dataclass
class RestartableS3:
    """moto's S3 server on a fixed local port that a test can stop and start again (its data stays)."""

    port: int
    server: object | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def restartable_s3() -> Iterator[RestartableS3]:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto[server] is not installed")
    s3 = RestartableS3(port=free_port())
    s3.start()
    yield s3
    s3.stop()


def _s3_context(settings: Settings, pg_url: str, s3: RestartableS3, **overrides: object) -> AppContext:
    bucket = f"luster-faults-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3.endpoint, region_name=S3_REGION, aws_access_key_id=S3_ACCESS_KEY,
                 aws_secret_access_key=S3_SECRET_KEY).create_bucket(Bucket=bucket)
    worker = worker_settings(s3_settings(settings, s3.endpoint, bucket, "post"), pg_url, **overrides)
    return AppContext(worker, db=make_engine(pg_url))


def test_jobs_retry_through_an_s3_outage_and_none_is_charged_without_its_output(settings, pg_url, restartable_s3, tmp_path) -> None:
    # Backoff as in production, scaled down: the outage outlasts several attempts' waits.
    context = _s3_context(settings, pg_url, restartable_s3, job_retry_base_seconds=0.3, job_retry_max_seconds=1.5,
                          job_max_attempts=10)
    balances = _queue(context, users=2, jobs_each=60)
    calls = tmp_path / "calls"
    workers = [WorkerProcess(context.settings, f"record:{calls}:0.05", concurrency=4, log=tmp_path / f"w{n}.log") for n in range(2)]
    try:
        wait_for(lambda: len(recorded_calls(calls)) >= 10, "the workers to be busy")
        restartable_s3.stop()
        time.sleep(2.5)
        restartable_s3.start()
        wait_for(lambda: _all_final(context), "every job to end", timeout=300)
    finally:
        for process in workers:
            process.stop()

    jobs = _assert_ledger_matches_outputs(context, balances)
    assert Counter(job.status for job in jobs) == {JobStatus.SUCCEEDED: 120}
    with context.session() as session:
        retried = session.execute(
            select(sa.func.count()).select_from(JobEvent).where(JobEvent.type == "attempt_failed")
        ).scalar_one()
        keys = session.execute(select(Asset.storage_key).where(Asset.kind == AssetKind.OUTPUT)).scalars().all()
    assert retried >= 1  # the outage hit jobs in flight
    assert all(context.storage.head(key) is not None for key in keys)  # every charged output is in the bucket
    context.db.dispose()


# --- the API when PostgreSQL restarts ---

def test_the_api_answers_again_right_after_the_database_restarts(settings, restartable_pg) -> None:
    """A real restart of a private PostgreSQL server (the shared one must stay up) while the API
    is idle: the first requests after it succeed, although every pooled connection died with the
    old server (no request in between has found that out)."""
    context = AppContext(settings, db=make_engine(restartable_pg.url))
    try:
        with TestClient(create_api(context)) as client:
            _, headers = make_user(context)
            pooled = [context.db.connect() for _ in range(4)]  # several pooled connections, all to die
            for conn in pooled:
                conn.execute(sa.text("SELECT 1"))
                conn.close()
            assert client.get("/api/me", headers=headers).status_code == 200

            restartable_pg.restart(down_seconds=1)

            for _ in range(3):  # more requests than the one that finds out the pool is stale
                assert client.get("/api/me", headers=headers).status_code == 200
                assert client.get("/api/health").json() == {"status": "ok"}
            assert client.post("/api/shoots", json={"name": "After the restart"}, headers=headers).status_code == 201
    finally:
        context.db.dispose()
