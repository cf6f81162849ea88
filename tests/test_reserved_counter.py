"""credits.reserved is kept by the database (triggers on `jobs`, migration 0021): it always equals
its owner's jobs that hold a credit, through every change a job can make, on SQLite and PostgreSQL;
a photographer's available credits are read from it."""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, func, select, update

from luster_app.context import AppContext
from luster_app.migrations import ROOT, downgrade, upgrade
from luster_app.models import Credits, Job, JobEvent, JobStatus, LedgerKind
from luster_app.services.admin import cancel_job
from luster_app.services.errors import Conflict, NotFound, PaymentRequired
from luster_app.services.jobs import JobOptions, create_batch, create_job, lock_credits, start_transaction
from luster_app.services.takeback import take_back
from luster_app.services.users import credit_summary
from tests.engines_for_tests import InvertEngine, indexed_image
from tests.jobs_support import add_photo, add_shoot, balance, user_with_credits, worker_context
from worker.worker import Worker


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, InvertEngine())
    yield ctx
    ctx.db.dispose()


def _counter_and_count(context: AppContext, user_id: uuid.UUID) -> tuple[int, int]:
    with context.session() as session:
        counter = session.execute(select(Credits.reserved).where(Credits.user_id == user_id)).scalar_one()
        count = session.execute(
            select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(JobStatus.RESERVING))
        ).scalar_one()
    return counter, count


def _photographer_with_jobs(context: AppContext, *, credits: int, jobs: int) -> tuple[uuid.UUID, list[Job]]:
    user, _ = user_with_credits(context, credits)
    shoot = add_shoot(context, user)
    photos = [add_photo(context, user, indexed_image(i), shoot=shoot).id for i in range(jobs)]
    with context.session() as session:
        queued = create_batch(session=session, user_id=user.id, asset_ids=photos, preset="enhance", params={},
                              options=JobOptions.for_context(context))
    return user.id, queued


def test_the_migration_names_the_statuses_that_reserve() -> None:
    path = next((ROOT / "alembic" / "versions").glob("0021_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.RESERVING == "(" + ", ".join(f"'{status}'" for status in JobStatus.RESERVING) + ")"


def test_every_status_change_and_delete_keeps_the_counter(context) -> None:
    user_id, (job, other) = _photographer_with_jobs(context, credits=5, jobs=2)
    assert _counter_and_count(context, user_id) == (2, 2)
    statuses = [JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.NEEDS_REVIEW, *JobStatus.FINAL]
    for before, after in itertools.product(statuses, statuses):
        for status in (before, after):
            with context.session() as session:
                session.execute(update(Job).where(Job.id == job.id).values(status=status))
                session.commit()
            counter, count = _counter_and_count(context, user_id)
            assert counter == count == 1 + (status in JobStatus.RESERVING), (before, after)
    with context.session() as session:
        session.execute(delete(JobEvent).where(JobEvent.job_id == other.id))
        session.execute(delete(Job).where(Job.id == other.id))
        session.commit()
    assert _counter_and_count(context, user_id) == (0, 0)  # `job` ended canceled


def test_a_jobs_life_through_the_services_keeps_the_counter(context) -> None:
    user_id, jobs = _photographer_with_jobs(context, credits=3, jobs=3)
    with context.session() as session:
        created = session.execute(select(JobEvent.job_id, JobEvent.detail).where(JobEvent.type == "created")).all()
        assert sorted(created) == sorted((job.id, {"preset": "enhance", "engine": job.engine}) for job in jobs)
        assert credit_summary(session=session, user_id=user_id) == {"balance": 3, "reserved": 3, "available": 0}
        with pytest.raises(PaymentRequired):
            create_job(session=session, user_id=user_id, asset_id=jobs[0].asset_id, preset="enhance", params={},
                       options=JobOptions.for_context(context))
        cancel_job(session=session, job_id=jobs[0].id, owner_id=user_id)
    assert _counter_and_count(context, user_id) == (2, 2)
    Worker(context, concurrency=2, drain=True).run()
    assert _counter_and_count(context, user_id) == (0, 0)
    assert balance(context, user_id) == 1
    with context.session() as session:
        assert credit_summary(session=session, user_id=user_id) == {"balance": 1, "reserved": 0, "available": 1}


def test_a_cancel_and_a_refund_at_once_do_not_deadlock(settings, pg_url) -> None:
    """A refund's take-back locks the credits row and then the queued jobs; the photographer's
    cancel at that moment must wait its turn, not lock its job first and then wait on credits."""
    context = worker_context(settings, pg_url, InvertEngine())
    user_id, (job,) = _photographer_with_jobs(context, credits=1, jobs=1)
    errors: dict[str, BaseException] = {}
    refund = context.session()
    start_transaction(refund)
    lock_credits(refund, user_id)  # take_back's first step (a Stripe refund webhook)

    def cancel() -> None:
        with context.session() as session:
            try:
                cancel_job(session=session, job_id=job.id, owner_id=user_id)
            except (Conflict, NotFound):
                pass  # the refund canceled it first: what the photographer is then told
            except Exception as exc:  # noqa: BLE001  (a deadlock: reported below)
                errors["cancel"] = exc

    canceling = threading.Thread(target=cancel)
    canceling.start()
    time.sleep(0.5)  # the cancel is waiting now
    try:
        take_back(session=refund, user_id=user_id, credits=1, kind=LedgerKind.ADJUSTMENT, ref="adj_refund", note="refund")
        refund.commit()
    except Exception as exc:  # noqa: BLE001
        errors["refund"] = exc
        refund.rollback()
    canceling.join()
    refund.close()
    assert errors == {}
    assert _counter_and_count(context, user_id) == (0, 0)
    context.db.dispose()


def test_the_migration_counts_jobs_that_change_while_it_runs(settings, pg_url) -> None:
    """A deploy migrates while the old workers still run: a job failing during the migration
    is neither counted by the backfill and then never subtracted, nor lost."""
    context = worker_context(settings, pg_url, InvertEngine())
    user_id, (failing, _) = _photographer_with_jobs(context, credits=2, jobs=2)
    with context.session() as session:
        session.execute(update(Job).where(Job.id == failing.id).values(status=JobStatus.PROCESSING))
        session.commit()
    context.db.dispose()
    downgrade(pg_url, "0020")
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        in_flight = conn.begin()  # an old worker's fail_job, not yet committed
        conn.execute(update(Job).where(Job.id == failing.id).values(status=JobStatus.FAILED))
        migrating = threading.Thread(target=upgrade, args=(pg_url, "head"))
        migrating.start()
        time.sleep(1.5)
        in_flight.commit()
    migrating.join()
    engine.dispose()
    context = worker_context(settings, pg_url, InvertEngine())
    assert _counter_and_count(context, user_id) == (1, 1)
    context.db.dispose()
