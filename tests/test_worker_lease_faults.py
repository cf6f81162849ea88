"""Fault runs: a worker process frozen (SIGSTOP) with jobs in flight for longer than the lease, as
when it loses the database that long, then resumed. Its jobs are run again (by another worker,
or by itself once it is back), and the money and the outputs must still add up:
0 jobs charged twice, 0 outputs lost, 0 negative balances, 0 orphan files of a fenced attempt.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from luster_app.context import AppContext
from luster_app.models import Asset, AssetKind, CreditLedger, Credits, Job, utcnow
from luster_app.services.jobs import JobOptions, create_batch
from tests.engines_for_tests import InvertEngine, indexed_image
from tests.jobs_support import (
    WorkerProcess, add_photos, add_shoot, jobs_by_status, user_with_credits, wait_for, worker_context, worker_settings,
)

pytestmark = pytest.mark.slow

ROUNDS = 4  # alternately: another worker takes the jobs over; the frozen worker takes them back itself
JOBS_PER_ROUND = 3
RENDER_SECONDS = 2.0  # longer than a heartbeat, so the freeze lands mid-render


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, InvertEngine())
    yield ctx
    ctx.db.dispose()



def _calls_of(calls: Path, process: WorkerProcess) -> list[int]:
    path = calls / f"{process.process.pid}.calls"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _queue_round(context: AppContext, first_index: int) -> uuid.UUID:
    """A photographer with exactly the credits for this round's jobs."""
    user, _ = user_with_credits(context, JOBS_PER_ROUND)
    photos = add_photos(
        context, user, [indexed_image(i) for i in range(first_index, first_index + JOBS_PER_ROUND)], shoot=add_shoot(context, user)
    )
    with context.session() as session:
        create_batch(
            session=session, user_id=user.id, asset_ids=[p.id for p in photos], preset="enhance", params={},
            options=JobOptions.for_context(context),
        )
    return user.id


def test_workers_frozen_longer_than_the_lease_never_double_charge_or_lose_an_output(context, tmp_path) -> None:
    url = context.db.url.render_as_string(hide_password=False)
    settings = worker_settings(context.settings, url)
    calls = tmp_path / "calls"
    started: list[WorkerProcess] = []

    def start(engine: str, **kwargs) -> WorkerProcess:
        process = WorkerProcess(settings, engine, log=tmp_path / f"worker-{len(started)}.log", **kwargs)
        started.append(process)
        return process

    double_calls = 0
    try:
        for number in range(ROUNDS):
            _queue_round(context, number * JOBS_PER_ROUND)
            frozen = start(f"record:{calls}:{RENDER_SECONDS}", concurrency=JOBS_PER_ROUND)
            wait_for(lambda: len(_calls_of(calls, frozen)) == JOBS_PER_ROUND, "every job of the round in flight")  # noqa: B023
            frozen.signal(signal.SIGSTOP)
            with context.session() as session:
                expires = max(session.execute(select(Job.lease_expires_at).where(Job.status == "processing")).scalars())
            wait_for(lambda: utcnow() > expires, "the frozen worker's leases to expire")  # noqa: B023
            if number % 2 == 0:  # another worker takes the jobs over while this one is frozen
                rescuer = start(f"record:{calls}", concurrency=JOBS_PER_ROUND, drain=True)
                assert rescuer.wait() == 0, rescuer.output()
            frozen.signal(signal.SIGCONT)
            wait_for(lambda: set(jobs_by_status(context)) == {"succeeded"}, "the round's jobs to succeed")
            frozen.signal(signal.SIGTERM)
            assert frozen.wait() == 0, frozen.output()
        per_photo = Counter(int(line) for path in calls.glob("*.calls") for line in path.read_text().split())
        double_calls = sum(1 for count in per_photo.values() if count > 1)
    finally:
        for process in started:
            if process.process.poll() is None:
                process.signal(signal.SIGCONT)
            process.stop()

    total = ROUNDS * JOBS_PER_ROUND
    with context.session() as session:
        charges = Counter(session.execute(select(CreditLedger.ref).where(CreditLedger.kind == "job")).scalars())
        balances = list(session.execute(select(Credits.balance)).scalars())
        outputs = list(session.execute(select(Asset).where(Asset.kind == AssetKind.OUTPUT)).scalars())
        thumbs = list(session.execute(select(Asset.storage_key).where(Asset.kind == AssetKind.THUMB)).scalars())
    output_keys = [output.storage_key for output in outputs]
    lost = [key for key in output_keys + thumbs if context.storage.head(key) is None]
    stored = {str(p.relative_to(context.storage.root)) for p in context.storage.root.rglob("outputs/*") if p.is_file()}
    print(
        f"{ROUNDS} rounds, {total} jobs frozen mid-render past their lease: {double_calls} engine calls made twice, "
        f"{sum(1 for n in charges.values() if n > 1)} jobs charged twice, {len(lost)} outputs lost, "
        f"{sum(1 for b in balances if b < 0)} negative balances"
    )
    assert double_calls >= ROUNDS // 2 * JOBS_PER_ROUND  # the takeover rounds really ran every job twice
    assert len(charges) == total and set(charges.values()) == {1}
    assert Counter(output.job_id for output in outputs) == Counter({output.job_id: 1 for output in outputs})
    assert len(outputs) == total
    assert lost == []
    assert min(balances) == 0
    assert stored == {key for key in output_keys + thumbs if "/outputs/" in key}  # the fenced attempts kept nothing
