"""The queue's transitions: claiming under concurrency, leases, heartbeats, finishing exactly once."""

from __future__ import annotations

import gc
import io
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from PIL import Image
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError, IntegrityError

from luster_app.context import AppContext
from luster_app.db import HeldConnection, Precompiled, is_postgres
from luster_app.metrics import REGISTRY
from luster_app.models import Asset, AssetKind, Job, JobEvent, utcnow
from luster_app.storage.keys import asset_prefix
from luster_app.services.corrections import corrections_note
from luster_app.services.job_queue import (
    FinishOutcome,
    OutputFiles,
    _claim_statement_postgres,
    _finish_statement_postgres,
    claim_jobs,
    finish_success,
    release_job,
)
from luster_app.services.jobs import JobOptions, create_batch
from tests.engines_for_tests import InvertEngine, WaitingEngine, indexed_image
from tests.jobs_support import add_photo, add_shoot, balance, job_charges, outputs_of, user_with_credits, worker_context
from worker.heartbeat import LeaseKeeper
from worker.pipeline import ImageLimits, render
from worker.retry import RetryPolicy
from worker.runner import JobRunner
from worker.worker import Worker


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, InvertEngine())
    yield ctx
    ctx.db.dispose()


def _queue_jobs(context: AppContext, count: int, *, spare_credits: int = 0) -> tuple[uuid.UUID, list[Job]]:
    user, _ = user_with_credits(context, count + spare_credits)
    shoot = add_shoot(context, user)
    photos = [add_photo(context, user, indexed_image(i), shoot=shoot).id for i in range(count)]
    with context.session() as session:
        jobs = create_batch(
            session=session, user_id=user.id, asset_ids=photos, preset="enhance", params={}, options=JobOptions.for_context(context)
        )
    return user.id, jobs


def _claim(context: AppContext, owner: str, limit: int = 10, lease_seconds: float = 60):
    with context.session() as session:
        return claim_jobs(session=session, owner=owner, limit=limit, lease_seconds=lease_seconds)


def _expire_lease(context: AppContext, job_id: uuid.UUID) -> None:
    with context.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def _events(context: AppContext, job_id: uuid.UUID) -> list[str]:
    with context.session() as session:
        return list(session.execute(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).scalars())


def _runner(context: AppContext, owner: str) -> JobRunner:
    settings = context.settings
    return JobRunner(
        context, owner=owner, policy=RetryPolicy.from_settings(settings), limits=ImageLimits.from_settings(settings),
        leases=LeaseKeeper(lambda leases: set(), interval=60),  # never started: this runner's lease is taken away by hand
    )


def test_concurrent_claimers_take_each_job_exactly_once(context) -> None:
    _, jobs = _queue_jobs(context, 60)
    taken: list[uuid.UUID] = []
    lock = threading.Lock()

    def claimer(owner: str) -> None:
        while claimed := _claim(context, owner, limit=3):
            with lock:
                taken.extend(item.job.id for item in claimed)

    threads = [threading.Thread(target=claimer, args=(f"worker-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(taken) == Counter(job.id for job in jobs)
    with context.session() as session:
        assert set(session.execute(select(Job.status)).scalars()) == {"processing"}


def test_a_job_not_yet_due_is_not_claimed(context) -> None:
    _, [job] = _queue_jobs(context, 1)
    with context.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(run_after=utcnow() + timedelta(minutes=5)))
        session.commit()

    assert _claim(context, "worker-a") == []


def test_an_expired_lease_is_taken_over_and_recorded(context) -> None:
    _, [job] = _queue_jobs(context, 1)
    [first] = _claim(context, "worker-a")
    assert _claim(context, "worker-b") == []  # leased: nobody else gets it

    _expire_lease(context, job.id)
    [second] = _claim(context, "worker-b")

    assert (first.reclaimed, second.reclaimed) == (False, True)
    assert second.job.attempts == 2
    assert second.job.lease_owner == "worker-b"
    assert _events(context, job.id) == ["created", "claimed", "lease_expired", "claimed"]


def test_a_worker_that_lost_its_lease_writes_nothing(context) -> None:
    user_id, [job] = _queue_jobs(context, 1)
    [stale] = _claim(context, "worker-a")
    _expire_lease(context, job.id)
    _claim(context, "worker-b")

    _runner(context, "worker-a").run(stale)  # renders, stores, then finds the lease gone

    assert outputs_of(context, job.id) == []
    assert job_charges(context) == 0
    with context.session() as session:
        assert session.get(Job, job.id).lease_owner == "worker-b"
    assert balance(context, user_id) == 1


def test_a_worker_that_lost_its_lease_leaves_the_new_owners_output_alone(context) -> None:
    """The old owner of a job, finding its lease gone, must not delete what the new one stored
    and is charged for."""
    user_id, [job] = _queue_jobs(context, 1)
    [stale] = _claim(context, "worker-a")
    _expire_lease(context, job.id)
    [current] = _claim(context, "worker-b")
    new_owner = _runner(context, "worker-b")
    rendered = render(current.job, current.original, storage=context.storage, engine=context.image_engine, limits=new_owner.limits)
    files = new_owner._store(current.job, current.original, rendered, current.next_version)

    _runner(context, "worker-a").run(stale)  # stores its own files, then finds the lease gone
    assert _finish(context, current, files) is FinishOutcome.FINISHED

    [output] = outputs_of(context, job.id)
    assert output.storage_key == files.key
    with Image.open(io.BytesIO(context.storage.get_bytes(output.storage_key))) as image:
        assert (image.format, image.size) == ("JPEG", (rendered.width, rendered.height))
    assert context.storage.head(files.thumb_key) is not None
    assert job_charges(context) == 1
    assert balance(context, user_id) == 0


def test_a_repeated_finish_charges_once(context) -> None:
    """A finish whose commit landed but whose reply was lost is retried: still one charge."""
    user_id, [job] = _queue_jobs(context, 1)
    [claimed] = _claim(context, "worker-a")
    files = _files(1, "only")

    assert _finish(context, claimed, files) is FinishOutcome.FINISHED
    assert _finish(context, claimed, files) is FinishOutcome.FINISHED

    assert job_charges(context) == 1
    assert len(outputs_of(context, job.id)) == 1
    assert balance(context, user_id) == 0


def _finish(context: AppContext, claimed, files: OutputFiles) -> FinishOutcome:
    with context.session() as session:
        return finish_success(
            session=session, job=claimed.job, original=claimed.original, lease_token=claimed.job.lease_token, files=files
        )


def _files(version: int, name: str) -> OutputFiles:
    return OutputFiles(version=version, key=f"{name}_v{version}.jpg", size=10, width=4, height=3,
                       thumb_key=f"{name}_v{version}_thumb.jpg", thumb_size=5, thumb_width=2, thumb_height=1)


def test_a_version_taken_by_a_concurrent_job_is_refused(context) -> None:
    user_id, [job] = _queue_jobs(context, 1, spare_credits=1)
    with context.session() as session:
        create_batch(
            session=session, user_id=user_id, asset_ids=[job.asset_id], preset="dusk", params={},
            options=JobOptions.for_context(context),
        )
    first, second = _claim(context, "worker-a")
    assert first.next_version == second.next_version == 1  # both rendered while no output existed

    assert _finish(context, first, _files(1, "first")) is FinishOutcome.FINISHED
    assert _finish(context, second, _files(1, "second")) is FinishOutcome.VERSION_TAKEN
    assert outputs_of(context, second.job.id) == []
    assert _finish(context, second, _files(2, "second")) is FinishOutcome.FINISHED
    assert [output.version for output in outputs_of(context, second.job.id)] == [2]
    assert job_charges(context) == 2


def test_another_integrity_error_in_the_finish_is_raised_not_taken_for_a_version(context) -> None:
    user_id, [job] = _queue_jobs(context, 1)
    [claimed] = _claim(context, "worker-a")
    gone = claimed.original.model_copy(update={"shoot_id": uuid.uuid4()})  # its shoot no longer exists

    with context.session() as session, pytest.raises(IntegrityError):
        finish_success(session=session, job=claimed.job, original=gone, lease_token=claimed.job.lease_token, files=_files(1, "only"))

    assert outputs_of(context, job.id) == []
    assert job_charges(context) == 0
    assert balance(context, user_id) == 1


def test_the_claim_and_the_finish_stay_within_the_drivers_statement_cache() -> None:
    """psycopg parses a statement with more than 50 parameters or 4096 characters again on every
    call, and parsing the finish cost a worker as much CPU as the rest of the finish: both run
    for every job, so both stay within its cache."""
    statements = [_claim_statement_postgres(), _finish_statement_postgres(False), _finish_statement_postgres(True)]
    for statement in statements:
        compiled = statement.compile(dialect=PGDialect_psycopg())
        assert len(compiled.params) <= MAX_CACHED_STATEMENT_PARAMS
        assert len(str(compiled).encode()) <= MAX_CACHED_STATEMENT_LENGTH


def test_what_the_corrections_did_is_kept_when_the_output_cannot_be_stored(context) -> None:
    """The finish records the corrections with the output; an attempt whose corrections ran but
    whose output could not be stored still records them, with its retry."""
    _, [job] = _queue_jobs(context, 1)  # Enhance straightens verticals unless told not to
    [claimed] = _claim(context, "worker-a")
    photo = claimed.original
    # A file where the photo's outputs folder goes: storing the output fails for real.
    context.storage.path_for(f"{asset_prefix(photo.user_id, photo.shoot_id, photo.id)}/outputs").write_bytes(b"")

    _runner(context, "worker-a").run(claimed)

    with context.session() as session:
        retried = session.get(Job, job.id)
    assert (retried.status, retried.error_code) == ("queued", "storage_unavailable")
    assert corrections_note(retried.corrections) == "No leaning verticals found (too few vertical lines)."
    assert outputs_of(context, job.id) == []


def test_release_puts_the_job_back_without_counting_the_attempt(context) -> None:
    _, [job] = _queue_jobs(context, 1)
    [claimed] = _claim(context, "worker-a")

    with context.session() as session:
        assert release_job(session=session, job_id=job.id, lease_token=claimed.job.lease_token)
        assert not release_job(session=session, job_id=job.id, lease_token=claimed.job.lease_token)  # no longer its job

    with context.session() as session:
        released = session.get(Job, job.id)
    assert (released.status, released.attempts, released.lease_owner) == ("queued", 0, None)
    assert _events(context, job.id) == ["created", "claimed", "released"]
    [again] = _claim(context, "worker-b")
    assert again.job.attempts == 1


def test_the_heartbeat_keeps_a_slow_job_leased(settings, db_url) -> None:
    """An engine call longer than the lease: the heartbeat extends it, so no rival takes the job."""
    context = worker_context(settings, db_url, WaitingEngine(4.0), job_lease_seconds=1.5)
    try:
        _, [job] = _queue_jobs(context, 1)
        worker = threading.Thread(target=Worker(context, concurrency=1, drain=True).run)
        worker.start()
        while _events(context, job.id)[-1] != "claimed":  # the worker has it; now the rival tries
            worker.join(0.05)
        rival_claims = []
        while worker.is_alive():
            rival_claims += _claim(context, "rival", lease_seconds=60)
            worker.join(0.2)
        assert rival_claims == []
        with context.session() as session:
            finished = session.get(Job, job.id)
        assert (finished.status, finished.attempts) == ("succeeded", 1)
    finally:
        context.db.dispose()



def test_a_batch_runs_and_lists_in_the_order_it_was_asked_for(context) -> None:
    """Photos picked in some order (not that of their ids or uploads) are claimed, and listed, in it."""
    user, _ = user_with_credits(context, 12)
    shoot = add_shoot(context, user)
    photos = [add_photo(context, user, indexed_image(i), shoot=shoot).id for i in range(12)]
    asked = photos[6:] + photos[:6][::-1]
    with context.session() as session:
        created = create_batch(
            session=session, user_id=user.id, asset_ids=asked, preset="enhance", params={},
            options=JobOptions.for_context(context),
        )
    assert [job.asset_id for job in created] == asked
    with context.session() as session:
        listed = session.execute(select(Job.asset_id).order_by(Job.created_at, Job.id)).scalars().all()
    assert listed == asked
    claimed = [item.job.asset_id for _ in asked for item in _claim(context, "worker-a", limit=1)]
    assert claimed == asked


# --- a worker's held connection (its claims, each job slot's finishes) ---


@pytest.fixture
def held(context) -> Iterator[HeldConnection]:
    connection = HeldConnection(context.db)
    yield connection
    connection.close()


def _charged() -> float:
    return REGISTRY.get_sample_value("luster_credits_charged_total") or 0.0


def _held_claim(held: HeldConnection, owner: str, limit: int = 10):
    return held.run(lambda db: claim_jobs(session=db, owner=owner, limit=limit, lease_seconds=60))


def _held_finish(held: HeldConnection, claimed, files: OutputFiles) -> FinishOutcome:
    return held.run(lambda db: finish_success(
        session=db, job=claimed.job, original=claimed.original, lease_token=claimed.job.lease_token, files=files
    ))


def test_on_a_held_connection_a_job_is_charged_exactly_once(context, held) -> None:
    """The worker's finish, its charge included, on the connection its job slot keeps; repeated
    (its commit landed but the answer was lost) it still charges once."""
    user_id, [job] = _queue_jobs(context, 1)
    [claimed] = _held_claim(held, "worker-a")
    charged = _charged()

    assert _held_finish(held, claimed, _files(1, "only")) is FinishOutcome.FINISHED
    assert _held_finish(held, claimed, _files(1, "only")) is FinishOutcome.FINISHED

    assert job_charges(context) == 1
    assert balance(context, user_id) == 0
    assert _charged() - charged == 1
    [output] = outputs_of(context, job.id)
    assert (output.storage_key, output.version, output.created_at.utcoffset()) == ("only_v1.jpg", 1, timedelta(0))
    with context.session() as session:
        event = session.execute(select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type == "succeeded")).scalar_one()
        thumbs = session.execute(select(func.count()).select_from(Asset).where(
            Asset.parent_asset_id == output.id, Asset.kind == AssetKind.THUMB
        )).scalar_one()
    assert event.detail == {"attempt": 1, "output_asset_id": str(output.id), "version": 1}
    assert thumbs == 1


def test_on_a_held_connection_a_lost_lease_writes_and_charges_nothing(context, held) -> None:
    user_id, [job] = _queue_jobs(context, 1)
    [stale] = _held_claim(held, "worker-a")
    _expire_lease(context, job.id)
    [current] = _held_claim(held, "worker-b")
    charged = _charged()

    assert _held_finish(held, stale, _files(1, "stale")) is FinishOutcome.LEASE_LOST

    assert outputs_of(context, job.id) == []
    assert job_charges(context) == 0
    assert balance(context, user_id) == 1
    assert _charged() == charged
    assert _held_finish(held, current, _files(1, "current")) is FinishOutcome.FINISHED
    assert job_charges(context) == 1


def test_the_claim_hands_over_the_job_and_photo_as_stored(context, held) -> None:
    """The claim's snapshots (built from its row without the ORM on PostgreSQL) hold what a
    session reads back, types and time zones included."""
    _, [job] = _queue_jobs(context, 1)
    with context.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(params={"straighten": False, "level": [1, 2]}))
        session.commit()
    [claimed] = _held_claim(held, "worker-a")

    with context.session() as session:
        stored_job, photo = session.get(Job, job.id), session.get(Asset, job.asset_id)
        assert claimed.job.model_dump() == stored_job.model_dump()
        assert claimed.original.model_dump() == photo.model_dump()
    assert claimed.job.params == {"straighten": False, "level": [1, 2]}
    assert claimed.job.started_at.utcoffset() == timedelta(0)
    assert (claimed.next_version, claimed.reclaimed) == (1, False)


def test_a_held_connection_is_replaced_after_it_broke(context, held) -> None:
    """A failed step gives its connection back (a database restart breaks every one); the next
    step takes a fresh one, and the queue goes on."""
    _queue_jobs(context, 1)
    if is_postgres(context.db):
        with pytest.raises(DBAPIError):
            held.run(lambda db: db.execute(text("SELECT pg_terminate_backend(pg_backend_pid())")))
    else:
        with pytest.raises(RuntimeError):
            held.run(lambda db: (_ for _ in ()).throw(RuntimeError("a failed step")))

    [claimed] = _held_claim(held, "worker-a")
    assert _held_finish(held, claimed, _files(1, "only")) is FinishOutcome.FINISHED
    assert job_charges(context) == 1


def test_a_precompiled_statement_refuses_a_missing_parameter() -> None:
    statement = Precompiled(_finish_statement_postgres(False), PGDialect_psycopg())

    with pytest.raises(ValueError, match="job_id"):
        statement.rows(None, {"token": "t"})  # type: ignore[arg-type]  (refused before any connection is used)


def test_a_worker_with_more_slots_than_the_shared_pool_holds_runs_every_job(settings, db_url) -> None:
    """Each slot keeps a connection for its finishes: the worker sizes a pool of its own for
    them, so slots beyond the shared pool's size neither wait for a connection nor fail."""
    slots = 24  # the shared pool holds 20 (make_engine's 10, and 10 more)
    context = worker_context(settings, db_url, WaitingEngine(0.3))
    try:
        user_id, jobs = _queue_jobs(context, slots + 6)
        Worker(context, concurrency=slots, drain=True).run()

        assert job_charges(context) == len(jobs)
        assert balance(context, user_id) == 0
        with context.session() as session:
            assert set(session.execute(select(Job.status)).scalars()) == {"succeeded"}
    finally:
        context.db.dispose()


@pytest.mark.postgres
def test_a_drained_worker_leaves_no_connection_open(settings, pg_url) -> None:
    """A worker that stops (drained, or signalled) closes every connection it opened: its slots'
    go back to its own pool before that pool is disposed, not to a disposed pool that keeps
    them open until the garbage collector comes by (a database then cannot be dropped or copied)."""
    context = worker_context(settings, pg_url, InvertEngine())
    try:
        _queue_jobs(context, 3)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # what keeps a leaked connection open: nothing has collected it yet
        try:
            assert Worker(context, concurrency=2, drain=True).run() == 0
            context.db.dispose()
            with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
                others = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()[0]
        finally:
            if gc_was_enabled:
                gc.enable()
        assert others == 0
    finally:
        context.db.dispose()
