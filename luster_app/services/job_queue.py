"""The worker's side of a job: claim, heartbeat, finish, retry, fail, release.

Claiming is one statement. Every later transition is conditional on the caller still holding
the lease (`id`, `lease_owner`, status `processing`), so a worker that lost its lease to
another changes nothing, and a credit moves only in the transaction that stores the output.
"""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, func, insert, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from luster_app.db import is_postgres
from luster_app.models import Asset, AssetKind, AssetStatus, Job, JobEvent, JobStatus, LedgerKind, UTCDateTime, utcnow
from luster_app.services.credits import apply_ledger_entry
from luster_app.services.jobs import add_event, add_events, event_row, start_transaction

NO_SYNC = {"synchronize_session": False}


class FinishOutcome(enum.Enum):
    FINISHED = "finished"  # the job succeeded with these outputs (now, or by an earlier commit)
    LEASE_LOST = "lease_lost"  # another worker owns the job: nothing was written
    VERSION_TAKEN = "version_taken"  # a concurrent job stored this version first: store under the next one


@dataclass(frozen=True)
class ClaimedJob:
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


def _now(session: Session, plus_seconds: float = 0) -> Any:
    """'Now' in SQL: the database's clock on PostgreSQL, which every worker machine shares;
    on SQLite (one machine) this process's clock."""
    if is_postgres(session.get_bind()):
        return func.now() + timedelta(seconds=plus_seconds) if plus_seconds else func.now()
    return literal(utcnow() + timedelta(seconds=plus_seconds), UTCDateTime())


def _owned(job_id: uuid.UUID, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.PROCESSING)


@functools.cache
def _claim_statement(postgres: bool) -> sa.Update:
    """The claim, built once per dialect (it runs for every job): parameters `owner`, `limit`,
    and the lease (`lease` as an interval on PostgreSQL; `now` and `lease_until` on SQLite)."""
    if postgres:
        now, lease_until = func.now(), func.now() + bindparam("lease", type_=sa.Interval())
    else:
        now, lease_until = bindparam("now", type_=UTCDateTime()), bindparam("lease_until", type_=UTCDateTime())
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
        .where(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < now)
        .order_by(Job.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("stale")
    )
    return (
        update(Job)
        .where(Job.id.in_(union_all(select(due.c.id), select(stale.c.id)).limit(limit)))
        .values(
            status=JobStatus.PROCESSING,
            lease_owner=bindparam("owner"),
            lease_expires_at=lease_until,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
        )
        .returning(Job)
    )


def claim_jobs(*, session: Session, owner: str, limit: int, lease_seconds: float) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs to `owner` in one statement, and record each attempt.

    Due means queued with `run_after` passed, or processing with an expired lease (its
    worker died). On PostgreSQL both sets are picked `FOR UPDATE SKIP LOCKED`, so concurrent
    workers never wait on or double-claim a row, and leases run on the database's clock, which
    every worker machine shares; SQLite runs the same statement under its single write lock,
    which makes the conditional UPDATE atomic.
    """
    start_transaction(session)
    lease = timedelta(seconds=lease_seconds)
    postgres = is_postgres(session.get_bind())
    params: dict[str, Any] = {"owner": owner, "limit": limit}
    params.update({"lease": lease} if postgres else {"now": utcnow(), "lease_until": utcnow() + lease})
    try:
        jobs = list(session.execute(_claim_statement(postgres), params, execution_options=NO_SYNC).scalars())
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


@functools.cache
def _next_version() -> sa.ScalarSelect[int]:
    """The version the next output of the photo in the enclosing query's `assets` row takes
    (built once: it is part of every claim)."""
    output = aliased(Asset)
    return (
        select(func.coalesce(func.max(output.version), 0) + 1)
        .where(output.parent_asset_id == Asset.id, output.kind == AssetKind.OUTPUT)
        .scalar_subquery()
    )


def _originals_with_next_version(session: Session, asset_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[Asset, int]]:
    """The claimed jobs' photos, each with its next output version: one query, so a claimed
    job needs no further reads before it runs."""
    rows = session.execute(select(Asset, _next_version()).where(Asset.id.in_(asset_ids)))
    return {asset.id: (asset, version) for asset, version in rows}


def _interrupted(session: Session, job_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `job_ids` whose latest event is a claim: that attempt never reported back, so
    its worker died and the lease expired (every other ending writes its own event)."""
    if not job_ids:
        return set()
    latest = select(func.max(JobEvent.id)).where(JobEvent.job_id.in_(job_ids)).group_by(JobEvent.job_id)
    return set(session.execute(select(JobEvent.job_id).where(JobEvent.id.in_(latest), JobEvent.type == "claimed")).scalars())


def _transition(session: Session, job_id: uuid.UUID, owner: str, values: dict[str, Any], event: str | None, **detail: Any) -> bool:
    """Apply `values` to a job this worker still owns, with its event; False if the lease is gone."""
    start_transaction(session)
    try:
        owned = session.execute(update(Job).where(*_owned(job_id, owner)).values(**values), execution_options=NO_SYNC).rowcount
        if owned and event:
            add_event(session, job_id, event, **detail)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return owned == 1


def extend_leases(*, session: Session, owner: str, job_ids: list[uuid.UUID], lease_seconds: float) -> set[uuid.UUID]:
    """The heartbeat: push forward the leases `owner` still holds among `job_ids`; returns those."""
    start_transaction(session)
    extend = (
        update(Job)
        .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.status == JobStatus.PROCESSING)
        .values(lease_expires_at=_now(session, lease_seconds))
        .returning(Job.id)
    )
    try:
        held = set(session.execute(extend, execution_options=NO_SYNC).scalars())
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return held


def schedule_retry(
    *, session: Session, job_id: uuid.UUID, owner: str, attempt: int, delay_seconds: float, error_code: str, error_message: str
) -> bool:
    """Back to `queued` after a transient failure, due again in `delay_seconds`; no charge."""
    values = {
        "status": JobStatus.QUEUED, "run_after": _now(session, delay_seconds), "lease_owner": None,
        "lease_expires_at": None, "error_code": error_code, "error_message": error_message,
    }
    return _transition(
        session, job_id, owner, values, "attempt_failed",
        attempt=attempt, error_code=error_code, message=error_message, retry_in_seconds=round(delay_seconds, 3),
    )


def fail_job(*, session: Session, job_id: uuid.UUID, owner: str, attempt: int, error_code: str, error_message: str) -> bool:
    """`failed` for good, with a message the photographer can act on; no charge."""
    values = {
        "status": JobStatus.FAILED, "finished_at": _now(session), "lease_owner": None, "lease_expires_at": None,
        "error_code": error_code, "error_message": error_message,
    }
    return _transition(session, job_id, owner, values, "failed", attempt=attempt, error_code=error_code, message=error_message)


def release_job(*, session: Session, job_id: uuid.UUID, owner: str) -> bool:
    """Hand an unfinished job back to the queue (worker stopping): due now, the attempt not counted."""
    values = {
        "status": JobStatus.QUEUED, "run_after": _now(session), "lease_owner": None, "lease_expires_at": None,
        "attempts": Job.attempts - 1,
    }
    return _transition(session, job_id, owner, values, "released", reason="worker stopped before the job finished")


def next_output_version(*, session: Session, original_id: uuid.UUID) -> int:
    """The version number the next output of this original photo gets (`_v{n}` in its key)."""
    start_transaction(session)
    version = session.execute(select(_next_version()).where(Asset.id == original_id)).scalar_one()
    session.commit()
    return version


def finish_success(*, session: Session, job: Job, original: Asset, owner: str, files: OutputFiles) -> FinishOutcome:
    """In one transaction, if `owner` still holds the lease: `succeeded`, the output and thumbnail
    assets, the ledger row (kind `job`, ref the job id) and one credit taken."""
    start_transaction(session)
    try:
        values = {
            "status": JobStatus.SUCCEEDED, "finished_at": _now(session), "lease_owner": None,
            "lease_expires_at": None, "error_code": None, "error_message": None,
        }
        if not session.execute(update(Job).where(*_owned(job.id, owner)).values(**values), execution_options=NO_SYNC).rowcount:
            session.rollback()
            return FinishOutcome.FINISHED if _stored_by_job(session, job.id, files.key) else FinishOutcome.LEASE_LOST
        try:
            output_id = _insert_output_assets(session, job, original, files)
        except IntegrityError:
            # uq_assets_parent_version: a concurrent job on this photo stored this version first.
            session.rollback()
            return FinishOutcome.VERSION_TAKEN
        apply_ledger_entry(session=session, user_id=job.user_id, delta=-1, kind=LedgerKind.JOB, ref=str(job.id))
        add_event(session, job.id, "succeeded", attempt=job.attempts, output_asset_id=str(output_id), version=files.version)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return FinishOutcome.FINISHED


def _stored_by_job(session: Session, job_id: uuid.UUID, key: str) -> bool:
    """Whether this output is already recorded: a finish whose commit succeeded but whose
    acknowledgement was lost to a dropped connection, and was then retried."""
    found = session.execute(select(Asset.id).where(Asset.job_id == job_id, Asset.storage_key == key)).first()
    session.rollback()
    return found is not None


def _insert_output_assets(session: Session, job: Job, original: Asset, files: OutputFiles) -> uuid.UUID:
    """The output and its thumbnail, in one INSERT; returns the output's id."""
    stem = f"{PurePosixPath(original.filename).stem}_{job.preset}_v{files.version}"
    output_id = uuid.uuid4()
    common = {
        "shoot_id": original.shoot_id, "user_id": original.user_id, "content_type": "image/jpeg",
        "status": AssetStatus.READY, "job_id": job.id, "reject_reason": None, "created_at": utcnow(),
    }
    rows = [
        {**common, "id": output_id, "kind": AssetKind.OUTPUT, "storage_key": files.key, "filename": f"{stem}.jpg",
         "bytes": files.size, "width": files.width, "height": files.height, "parent_asset_id": original.id,
         "version": files.version},
        {**common, "id": uuid.uuid4(), "kind": AssetKind.THUMB, "storage_key": files.thumb_key,
         "filename": f"{stem}_thumb.jpg", "bytes": files.thumb_size, "width": files.thumb_width,
         "height": files.thumb_height, "parent_asset_id": output_id, "version": None},
    ]
    session.execute(insert(Asset), rows)
    return output_id
