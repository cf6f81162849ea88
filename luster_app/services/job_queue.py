"""The worker's side of a job: claim, heartbeat, finish, retry, fail, release.

Claiming is one statement, and gives each claim its own random lease token. Every later
transition is conditional on that token (`id`, `lease_token`, status `processing`), so an attempt
whose lease was taken over changes nothing, even when the job went back to the same worker
process (it lost the database for longer than the lease); a credit moves only in the
transaction that stores the output.

The claim and the finish run for every job, so on PostgreSQL each is one statement, and either
takes, besides a Session, an autocommit Connection that the caller keeps across many calls
(a worker's job slot: `luster_app.db.HeldConnection`): a Session, a pool checkout and an
isolation switch around each statement cost a worker more CPU than the statement itself.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy import bindparam, delete, exists, func, insert, literal, literal_column, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from luster_app.db import Precompiled, is_postgres
from luster_app.metrics import count_committed_credits
from luster_app.models import (
    Asset,
    AssetKind,
    AssetStatus,
    Job,
    JobEvent,
    JobStatus,
    LedgerKind,
    UTCDateTime,
    WorkerHeartbeat,
    utcnow,
)
from luster_app.services.credits import apply_ledger_entry, ledger_entry_postgres
from luster_app.services.jobs import add_event, add_events, event_row, start_transaction

NO_SYNC = {"synchronize_session": False}
NEVER_DEAD = timedelta(days=3650)  # `claim_jobs` without a heartbeat limit: no worker counts as dead
# The `assets` columns in which a finished job's output and its thumbnail differ; they share the rest.
OWN_ASSET_COLUMNS = frozenset(
    {"id", "kind", "storage_key", "filename", "bytes", "width", "height", "parent_asset_id", "version"}
)


# What the claim and the finish run on: a Session (a transaction of its own per call), or on
# PostgreSQL an autocommit Connection the caller holds (see the module's docstring).
QueueDb: TypeAlias = Session | Connection


class FinishOutcome(enum.Enum):
    FINISHED = "finished"  # the job succeeded with these outputs (now, or by an earlier commit)
    LEASE_LOST = "lease_lost"  # another worker owns the job: nothing was written
    VERSION_TAKEN = "version_taken"  # a concurrent job stored this version first: store under the next one


@dataclass(frozen=True)
class ClaimedJob:
    """A claimed job and its photo, as read by the claim: snapshots to read, tied to no session
    (on PostgreSQL built from the claim's row without the ORM, which would cost more CPU than the
    claim's statement; never add them to a session)."""

    job: Job
    original: Asset | None  # the photo to edit (None if it was deleted meanwhile)
    next_version: int  # the output version this attempt should store as, unless another job takes it first
    reclaimed: bool  # taken over from a worker whose lease expired


@dataclass(frozen=True)
class OutputFiles:
    """An output and its thumbnail, already in storage under keys for `version`."""

    version: int
    key: str
    size: int
    width: int
    height: int
    thumb_key: str
    thumb_size: int
    thumb_width: int
    thumb_height: int


def _postgres(db: QueueDb) -> bool:
    return is_postgres(db if isinstance(db, Connection) else db.get_bind())


def _single_statement(db: QueueDb) -> Connection:
    """Where a PostgreSQL unit of work runs its single statement (atomic by itself): in autocommit,
    without BEGIN and COMMIT round trips. A held connection is in autocommit already; a session's
    is switched for this transaction (call at its start), and is back to transactions when it
    returns to the pool."""
    if isinstance(db, Connection):
        return db
    return db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


# The finish's statements compiled for the driver: by statement and dialect class (compiled with
# the first such dialect seen; two threads at once may each compile it, harmlessly).
_PRECOMPILED: dict[tuple[Hashable, type], Precompiled] = {}


def _precompiled(key: Hashable, connection: Connection, build: Callable[[], sa.Select[Any]]) -> Precompiled:
    dialect = connection.dialect
    found = _PRECOMPILED.get((key, type(dialect)))
    if found is None:
        found = _PRECOMPILED[key, type(dialect)] = Precompiled(build(), dialect)
    return found


def _session(db: QueueDb) -> Session:
    """SQLite's steps are several statements in one transaction under its write lock: a session's."""
    if isinstance(db, Connection):
        raise TypeError("a held connection runs PostgreSQL's single-statement steps; on SQLite pass a Session")
    return db


def _now(session: Session, plus_seconds: float = 0) -> Any:
    """'Now' in SQL: the database's clock on PostgreSQL, which every worker machine shares;
    on SQLite (one machine) this process's clock."""
    if is_postgres(session.get_bind()):
        return func.now() + timedelta(seconds=plus_seconds) if plus_seconds else func.now()
    return literal(utcnow() + timedelta(seconds=plus_seconds), UTCDateTime())


def _owned(job_id: uuid.UUID, lease_token: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (Job.id == job_id, Job.lease_token == lease_token, Job.status == JobStatus.PROCESSING)


def _new_token(postgres: bool) -> sa.ColumnElement[str]:
    """A fresh random token for each row the claim takes (evaluated per row)."""
    if postgres:
        return func.replace(sa.cast(func.gen_random_uuid(), sa.Text()), "-", "")
    return func.lower(func.hex(func.randomblob(16)))


@functools.cache
def _claim_update(postgres: bool) -> tuple[sa.Update, sa.CTE]:
    """The claim, built once per dialect (it runs for every job): parameters `owner`, `limit`,
    the lease and how long unseen makes a worker dead (`lease` and `dead_after` as intervals on
    PostgreSQL; `now`, `lease_until` and `dead_before` on SQLite). Also returns the set of jobs it
    takes over (`stale`): their lease expired, or their worker stopped beating.

    Stale jobs go first: their worker died holding them, their photographer has waited already,
    and their credits are reserved; a large batch queued meanwhile must not hold them up."""
    if postgres:
        now, lease_until = func.now(), func.now() + bindparam("lease", type_=sa.Interval())
        dead_before = func.now() - bindparam("dead_after", type_=sa.Interval())
    else:
        now, lease_until = bindparam("now", type_=UTCDateTime()), bindparam("lease_until", type_=UTCDateTime())
        dead_before = bindparam("dead_before", type_=UTCDateTime())
    dead = select(WorkerHeartbeat.id).where(WorkerHeartbeat.last_seen < dead_before)
    limit = bindparam("limit", type_=sa.Integer())
    due = (
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.run_after <= now)
        .order_by(Job.run_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stale = (
        select(Job.id)
        .where(Job.status == JobStatus.PROCESSING, or_(Job.lease_expires_at < now, Job.lease_owner.in_(dead)))
        .order_by(Job.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("stale")
    )
    candidates = union_all(
        select(stale.c.id, literal(0).label("rank")), select(due.c.id, literal(1).label("rank"))
    ).subquery()
    first = select(candidates.c.id).order_by(candidates.c.rank).limit(limit)
    claim = (
        update(Job)
        .where(Job.id.in_(first))
        .values(
            status=JobStatus.PROCESSING,
            lease_owner=bindparam("owner"),
            lease_token=_new_token(postgres),
            lease_expires_at=lease_until,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
        )
    )
    return claim, stale


@functools.cache
def _claim_statement_sqlite() -> sa.Update:
    """SQLite (no statements inside WITH): the claim alone; `claim_jobs` adds events and photos."""
    return _claim_update(False)[0].returning(Job)


@functools.cache
def _claim_statement_postgres() -> sa.Select[Any]:
    """PostgreSQL: the claim, its events and each claimed job's photo with its next output
    version, in one statement (the claim runs for every job, and each statement costs this
    process more CPU than the database spends on it). Parameters as `_claim_update`, and `at`.
    Each row: the job's columns, whether it was taken over, the photo's columns (NULL if it
    is gone), its next version (`_claimed_from_row`).

    A job taken over from the expired lease of a worker that died gets a `lease_expired`
    event before its `claimed` one: its last attempt never reported back.
    """
    claim, stale = _claim_update(True)
    reclaimed = Job.id.in_(select(stale.c.id)).label("reclaimed")
    claimed = claim.returning(*Job.__table__.c, reclaimed).cte("claimed")
    at = bindparam("at", type_=UTCDateTime())
    worker = sa.cast(bindparam("owner"), sa.Text())

    def event(kind: str, step: int, *detail: Any) -> sa.Select[Any]:
        return select(
            claimed.c.id.label("job_id"), at.label("at"), literal_column(f"'{kind}'").label("type"),
            func.json_build_object(*detail).label("detail"), literal_column(str(step)).label("step"),
        )

    events = union_all(
        event("lease_expired", 0, "attempt", claimed.c.attempts - 1).where(claimed.c.reclaimed),
        event("claimed", 1, "attempt", claimed.c.attempts, "worker", worker),
    ).subquery()
    columns = ("job_id", "at", "type", "detail")
    in_timeline_order = select(*(events.c[name] for name in columns)).order_by(events.c.job_id, events.c.step)
    log = insert(JobEvent.__table__).from_select(columns, in_timeline_order).cte("logged")
    assets = Asset.__table__
    return (
        select(*(claimed.c[name] for name in _columns(Job)), claimed.c.reclaimed, *assets.c, _next_version(claimed.c.asset_id))
        .outerjoin(assets, assets.c.id == claimed.c.asset_id)
        .add_cte(log)
    )


@functools.cache
def _columns(model: type[Job] | type[Asset]) -> tuple[str, ...]:
    return tuple(column.name for column in model.__table__.c)


def _claimed_from_row(row: sa.Row[Any]) -> ClaimedJob:
    """A row of `_claim_statement_postgres` as a ClaimedJob. `model_construct` fills the models
    from the row as it is (its values are the database's, typed by the statement's columns): the
    ORM's loading of two objects a job cost more CPU than the claim's statement."""
    job_columns, asset_columns = _columns(Job), _columns(Asset)
    reclaimed_at = len(job_columns)
    job = Job.model_construct(**dict(zip(job_columns, row[:reclaimed_at], strict=True)))
    photo = row[reclaimed_at + 1 : -1]
    original = Asset.model_construct(**dict(zip(asset_columns, photo, strict=True))) if photo[0] is not None else None
    return ClaimedJob(job=job, original=original, next_version=row[-1], reclaimed=row[reclaimed_at])


def claim_jobs(
    *, session: QueueDb, owner: str, limit: int, lease_seconds: float, dead_after_seconds: float | None = None
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs to `owner` in one statement, and record each attempt.
    `session`: a Session, or on PostgreSQL a held autocommit Connection.

    Due means processing with an expired lease (its worker died, or lost the database for longer
    than the lease) or whose worker has not beaten for `dead_after_seconds` (None: leases only;
    see `worker_beat`), taken first; or queued with `run_after` passed. Each claim gets a new
    `lease_token`, which every later step of that attempt presents. On PostgreSQL both sets are
    picked `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on or double-claim a row, and leases run on the database's clock, which
    every worker machine shares; SQLite runs the same statement under its single write lock,
    which makes the conditional UPDATE atomic.
    """
    start_transaction(session)
    lease = timedelta(seconds=lease_seconds)
    dead_after = timedelta(seconds=dead_after_seconds) if dead_after_seconds is not None else NEVER_DEAD
    if _postgres(session):
        params = {"owner": owner, "limit": limit, "lease": lease, "dead_after": dead_after, "at": utcnow()}
        try:
            # Through SQLAlchemy, not `Precompiled`: it keeps the result's layout (about 45
            # columns) with the compiled form, which `Precompiled` would build on every call.
            rows = _single_statement(session).execute(_claim_statement_postgres(), params).all()
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return [_claimed_from_row(row) for row in rows]
    session = _session(session)
    now = utcnow()
    params = {"owner": owner, "limit": limit, "now": now, "lease_until": now + lease, "dead_before": now - dead_after}
    try:
        jobs = list(session.execute(_claim_statement_sqlite(), params, execution_options=NO_SYNC).scalars())
        if not jobs:
            session.commit()
            return []
        interrupted = _interrupted(session, [job.id for job in jobs if job.attempts > 1])
        events = []
        for job in jobs:
            if job.id in interrupted:
                events.append(event_row(job.id, "lease_expired", attempt=job.attempts - 1))
            events.append(event_row(job.id, "claimed", attempt=job.attempts, worker=owner))
        add_events(session, events)
        originals = _originals_with_next_version(session, {job.asset_id for job in jobs})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    claimed = []
    for job in jobs:
        original, version = originals.get(job.asset_id, (None, 1))
        claimed.append(ClaimedJob(job=job, original=original, next_version=version, reclaimed=job.id in interrupted))
    return claimed


def _next_version(photo_id: Any) -> sa.ScalarSelect[int]:
    """The version the next output of photo `photo_id` (a column of the enclosing query) takes."""
    output = aliased(Asset)
    return (
        select(func.coalesce(func.max(output.version), 0) + 1)
        .where(output.parent_asset_id == photo_id, output.kind == AssetKind.OUTPUT)
        .scalar_subquery()
    )


@functools.cache
def _originals_statement() -> sa.Select[tuple[Asset, int]]:
    """The photos `ids` with their next output versions (built once: part of every claim)."""
    return select(Asset, _next_version(Asset.id)).where(Asset.id.in_(bindparam("ids", expanding=True)))


def _originals_with_next_version(session: Session, asset_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[Asset, int]]:
    """The claimed jobs' photos, each with its next output version: one query, so a claimed
    job needs no further reads before it runs."""
    rows = session.execute(_originals_statement(), {"ids": list(asset_ids)})
    return {asset.id: (asset, version) for asset, version in rows}


def _interrupted(session: Session, job_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `job_ids` whose latest event is a claim: that attempt never reported back, so
    its worker died and the lease expired (every other ending writes its own event)."""
    if not job_ids:
        return set()
    latest = select(func.max(JobEvent.id)).where(JobEvent.job_id.in_(job_ids)).group_by(JobEvent.job_id)
    return set(session.execute(select(JobEvent.job_id).where(JobEvent.id.in_(latest), JobEvent.type == "claimed")).scalars())


def _transition(
    session: Session, job_id: uuid.UUID, lease_token: str, values: dict[str, Any], event: str | None, **detail: Any
) -> bool:
    """Apply `values` to a job whose lease this attempt still holds, with its event; False if the lease is gone."""
    start_transaction(session)
    try:
        change = update(Job).where(*_owned(job_id, lease_token)).values(**values)
        owned = session.execute(change, execution_options=NO_SYNC).rowcount
        if owned and event:
            add_event(session, job_id, event, **detail)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return owned == 1


def worker_beat(*, session: Session, worker_id: str, forget_after_seconds: float) -> None:
    """Record that worker `worker_id` is alive now (its row in `workers`), and forget workers not
    seen for `forget_after_seconds`: long enough that their jobs' leases have expired too, so a
    forgotten worker's jobs are still taken over."""
    start_transaction(session)
    postgres = is_postgres(session.get_bind())
    upsert = (pg_insert if postgres else sqlite_insert)(WorkerHeartbeat.__table__)
    now = _now(session)
    beat = upsert.values(id=worker_id, started_at=now, last_seen=now).on_conflict_do_update(
        index_elements=["id"], set_={"last_seen": now}
    )
    try:
        session.execute(beat)
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < _now(session, -forget_after_seconds)))
        session.commit()
    except BaseException:
        session.rollback()
        raise


def worker_gone(*, session: Session, worker_id: str) -> None:
    """A worker stopping cleanly takes its row away (its unfinished jobs were released)."""
    start_transaction(session)
    try:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.id == worker_id))
        session.commit()
    except BaseException:
        session.rollback()
        raise


def extend_leases(*, session: Session, leases: dict[str, uuid.UUID], lease_seconds: float) -> set[str]:
    """The heartbeat: push forward the leases still held among `leases` (token to job id); returns
    their tokens. Tokens are unique, so a token matches its own claim only; the ids use the index."""
    start_transaction(session)
    extend = (
        update(Job)
        .where(Job.id.in_(set(leases.values())), Job.lease_token.in_(list(leases)), Job.status == JobStatus.PROCESSING)
        .values(lease_expires_at=_now(session, lease_seconds))
        .returning(Job.lease_token)
    )
    try:
        held = set(session.execute(extend, execution_options=NO_SYNC).scalars())
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return held


def schedule_retry(
    *, session: Session, job_id: uuid.UUID, lease_token: str, attempt: int, delay_seconds: float, error_code: str,
    error_message: str, corrections: dict[str, Any] | None = None,
) -> bool:
    """Back to `queued` after a transient failure, due again in `delay_seconds`; no charge.
    `corrections`: what the attempt's corrections did, if it got that far."""
    values = {
        "status": JobStatus.QUEUED, "run_after": _now(session, delay_seconds), "lease_owner": None,
        "lease_expires_at": None, "lease_token": None, "error_code": error_code, "error_message": error_message,
    } | _corrections(corrections)
    return _transition(
        session, job_id, lease_token, values, "attempt_failed",
        attempt=attempt, error_code=error_code, message=error_message, retry_in_seconds=round(delay_seconds, 3),
    )


def fail_job(
    *, session: Session, job_id: uuid.UUID, lease_token: str, attempt: int, error_code: str, error_message: str,
    corrections: dict[str, Any] | None = None,
) -> bool:
    """`failed` for good, with a message the photographer can act on; no charge. `corrections`:
    what the attempt's corrections did, if it got that far."""
    values = {
        "status": JobStatus.FAILED, "finished_at": _now(session), "lease_owner": None, "lease_expires_at": None,
        "lease_token": None, "error_code": error_code, "error_message": error_message,
    } | _corrections(corrections)
    return _transition(
        session, job_id, lease_token, values, "failed", attempt=attempt, error_code=error_code, message=error_message
    )


def _corrections(outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The job's `corrections` column, when an attempt that ends without an output recorded some."""
    return {} if outcome is None else {"corrections": outcome}


def release_job(*, session: Session, job_id: uuid.UUID, lease_token: str) -> bool:
    """Hand an unfinished job back to the queue (worker stopping): due now, the attempt not counted."""
    values = {
        "status": JobStatus.QUEUED, "run_after": _now(session), "lease_owner": None, "lease_expires_at": None,
        "lease_token": None, "attempts": Job.attempts - 1,
    }
    return _transition(session, job_id, lease_token, values, "released", reason="worker stopped before the job finished")


def next_output_version(*, session: Session, original_id: uuid.UUID) -> int:
    """The version number the next output of this original photo gets (`_v{n}` in its key)."""
    start_transaction(session)
    version = session.execute(select(_next_version(Asset.id)).where(Asset.id == original_id)).scalar_one()
    session.commit()
    return version


@functools.cache
def _succeed_statement(postgres: bool, review: bool) -> sa.Update:
    """`succeeded` (or `needs_review`) with the job's `alteration` and `corrections`, if the
    attempt holding `token` still holds the lease on `job_id` (`now` too on SQLite)."""
    jobs = Job.__table__
    now = func.now() if postgres else bindparam("now", type_=UTCDateTime())
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("job_id"), jobs.c.lease_token == bindparam("token"),
            jobs.c.status == JobStatus.PROCESSING,
        )
        .values(
            status=JobStatus.NEEDS_REVIEW if review else JobStatus.SUCCEEDED, finished_at=now, lease_owner=None,
            lease_expires_at=None, lease_token=None, error_code=None, error_message=None,
            alteration=bindparam("alteration", type_=jobs.c.alteration.type),
            corrections=bindparam("corrections", type_=jobs.c.corrections.type),
        )
    )


@functools.cache
def _finish_statement_postgres(review: bool) -> sa.Select[tuple[int]]:
    """PostgreSQL: the whole finish in one statement, which counts the jobs it finished (0: the
    lease was lost, and nothing was written). Parameters: `job_id`, `token`, `at`, `detail` (the
    event's), `ref` (the ledger's), `alteration`, `corrections`, the asset columns both rows share
    prefixed `asset_`, and each row's own (`OWN_ASSET_COLUMNS`) prefixed `output_` and `thumb_`.
    An edit held for review (`review`) records no ledger row: nothing is charged.

    Built once, as one statement on the tables: it runs for every job, and each statement
    through the ORM costs this process more CPU than the database spends on it. Shared columns
    are bound once to keep it within psycopg's cache (at most 50 parameters), which otherwise
    parses the statement again on every call.
    """
    jobs, assets, events = Job.__table__, Asset.__table__, JobEvent.__table__
    finished = _succeed_statement(True, review).returning(jobs.c.id, jobs.c.user_id).cte("finished")
    at = bindparam("at", type_=UTCDateTime())
    columns = [column.name for column in assets.c]

    def value(row: str, name: str) -> sa.BindParameter[Any]:
        return bindparam(f"{row if name in OWN_ASSET_COLUMNS else 'asset'}_{name}", type_=assets.c[name].type)

    rows = union_all(*(
        select(*(value(row, name) for name in columns)).where(exists(select(finished.c.id)))
        for row in ("output", "thumb")
    ))
    stored = insert(assets).from_select(columns, rows).cte("stored")
    outcome = JobStatus.NEEDS_REVIEW if review else "succeeded"
    event = select(finished.c.id, at, literal(outcome), bindparam("detail", type_=events.c.detail.type))
    logged = insert(events).from_select(["job_id", "at", "type", "detail"], event).cte("logged")
    if review:
        return select(func.count()).select_from(finished).add_cte(stored, logged)
    charge = select(finished.c.user_id, literal(-1), literal(LedgerKind.JOB), bindparam("ref", type_=sa.String()), literal(""), at)
    entry, moved = ledger_entry_postgres(charge)
    return select(func.count()).select_from(finished).add_cte(stored, logged, entry, moved)


def finish_success(
    *, session: QueueDb, job: Job, original: Asset, lease_token: str, files: OutputFiles,
    alteration: dict[str, Any] | None = None, corrections: dict[str, Any] | None = None, review: bool = False,
) -> FinishOutcome:
    """In one transaction, if the attempt holding `lease_token` still holds the lease: `succeeded`,
    the output and thumbnail assets, the `succeeded` event, the ledger row (kind `job`, ref the job
    id) and one credit taken. `session`: a Session, or on PostgreSQL a held autocommit Connection.

    With `review` (the edit redrew too much outside its preset's region): `needs_review`, the
    assets `held` (not delivered), a `needs_review` event, and no ledger row: its owner's
    decision (services/review.py) charges or not. `alteration` and `corrections` (what the
    corrections the job asked for did) are recorded on the job either way.
    """
    shared, output, thumb = _output_asset_rows(job, original, files, AssetStatus.HELD if review else AssetStatus.READY)
    detail = {"attempt": job.attempts, "output_asset_id": str(output["id"]), "version": files.version}
    start_transaction(session)
    try:
        if _postgres(session):
            params = {
                "job_id": job.id, "token": lease_token, "at": utcnow(), "detail": detail, "ref": str(job.id),
                "alteration": alteration, "corrections": corrections,
            }
            for row, values in (("asset", shared), ("output", output), ("thumb", thumb)):
                params |= {f"{row}_{name}": value for name, value in values.items()}
            connection = _single_statement(session)
            statement = _precompiled(("finish", review), connection, lambda: _finish_statement_postgres(review))
            [(finished,)] = statement.rows(connection, params)
            if finished and not review:
                # The statement's ledger CTE charged the credit, committed as it returned
                # (autocommit); SQLite's apply_ledger_entry counts its own at commit.
                count_committed_credits(kind=LedgerKind.JOB, delta=-1)
        else:
            assets = [shared | output, shared | thumb]
            finished = _finish_sqlite(_session(session), job, lease_token, assets, detail, alteration, corrections, review)
    except IntegrityError as exc:
        session.rollback()
        if _version_taken(exc):
            return FinishOutcome.VERSION_TAKEN
        raise
    except BaseException:
        session.rollback()
        raise
    if not finished:
        session.rollback()
        return FinishOutcome.FINISHED if _stored_by_job(session, job.id, files.key) else FinishOutcome.LEASE_LOST
    session.commit()
    return FinishOutcome.FINISHED


def _version_taken(exc: IntegrityError) -> bool:
    """Whether the finish broke uq_assets_parent_version: a concurrent job on this photo stored
    this output version first (any other integrity error is a real failure)."""
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag.constraint_name == "uq_assets_parent_version"
    return "assets.parent_asset_id, assets.version" in str(exc.orig)  # SQLite names its columns


def _finish_sqlite(
    session: Session, job: Job, lease_token: str, assets: list[dict[str, Any]], detail: dict[str, Any],
    alteration: dict[str, Any] | None, corrections: dict[str, Any] | None, review: bool,
) -> bool:
    """SQLite (no statements inside WITH): the finish's statements one by one, under its write lock."""
    params = {"job_id": job.id, "token": lease_token, "now": utcnow(), "alteration": alteration, "corrections": corrections}
    if not session.execute(_succeed_statement(False, review), params).rowcount:
        return False
    session.execute(insert(Asset.__table__), assets)
    if review:
        add_event(session, job.id, JobStatus.NEEDS_REVIEW, **detail)
        return True
    add_event(session, job.id, "succeeded", **detail)
    apply_ledger_entry(session=session, user_id=job.user_id, delta=-1, kind=LedgerKind.JOB, ref=str(job.id))
    return True


def _stored_by_job(session: QueueDb, job_id: uuid.UUID, key: str) -> bool:
    """Whether this output is already recorded: a finish whose commit succeeded but whose
    acknowledgement was lost to a dropped connection, and was then retried. Output keys are
    per attempt, so a match is this attempt's own finish."""
    found = session.execute(select(Asset.id).where(Asset.job_id == job_id, Asset.storage_key == key)).first()
    session.rollback()
    return found is not None


def _output_asset_rows(
    job: Job, original: Asset, files: OutputFiles, status: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The `assets` rows of an output and its thumbnail (in `status`): the columns both share,
    then each one's own (`OWN_ASSET_COLUMNS`); together every column."""
    stem = f"{PurePosixPath(original.filename).stem}_{job.preset}_v{files.version}"
    output_id = uuid.uuid4()
    shared = {
        "shoot_id": original.shoot_id, "user_id": original.user_id, "content_type": "image/jpeg",
        "status": status, "job_id": job.id, "reject_reason": None, "created_at": utcnow(),
        "sweep_failures": 0, "sweep_after": None, "bracket_id": None, "exposure": None,
    }
    output = {
        "id": output_id, "kind": AssetKind.OUTPUT, "storage_key": files.key, "filename": f"{stem}.jpg",
        "bytes": files.size, "width": files.width, "height": files.height, "parent_asset_id": original.id,
        "version": files.version,
    }
    thumb = {
        "id": uuid.uuid4(), "kind": AssetKind.THUMB, "storage_key": files.thumb_key,
        "filename": f"{stem}_thumb.jpg", "bytes": files.thumb_size, "width": files.thumb_width,
        "height": files.thumb_height, "parent_asset_id": output_id, "version": None,
    }
    return shared, output, thumb
