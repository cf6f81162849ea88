"""Queue health for operators: jobs by status, the oldest queued job's age, recent failures by code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlmodel import Session

from luster_app.models import Credits, Job, JobEvent, JobStatus, User, utcnow
from luster_app.services.admin import JOB_STATUSES, require_admin

RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class QueueHealth:
    """The queue at `as_of`."""

    as_of: datetime
    jobs_by_status: dict[str, int]
    oldest_queued_job_id: uuid.UUID | None
    oldest_queued_age_seconds: float | None
    # Jobs that failed for good within the last hour, by error code.
    failed_last_hour: dict[str, int]
    # Attempts that failed and were retried within the last hour, by error code.
    retried_last_hour: dict[str, int]


@dataclass(frozen=True)
class QueueDepth:
    """What a scrape reports: jobs due and waiting, running under a live lease, running under an
    expired one (its worker died or hangs), and how long the longest-waiting due job has waited."""

    due: int
    processing: int
    stale: int
    oldest_due_age_seconds: float
    # Photographers whose balance is below zero: only a bug or a refund of spent credits does that.
    negative_balances: int


def queue_depth(*, session: Session, now: datetime | None = None) -> QueueDepth:
    """The queue in one aggregate over the active jobs (the status index keeps it cheap)."""
    now = now or utcnow()
    due = and_(Job.status == JobStatus.QUEUED, Job.run_after <= now)
    processing = Job.status == JobStatus.PROCESSING
    row = session.execute(
        select(
            func.count().filter(due),
            func.min(Job.run_after).filter(due),
            func.count().filter(processing, Job.lease_expires_at >= now),
            func.count().filter(processing, Job.lease_expires_at < now),
        ).where(Job.status.in_(JobStatus.ACTIVE))
    ).one()
    negative = session.execute(select(func.count()).select_from(Credits).where(Credits.balance < 0)).scalar_one()
    session.commit()
    due_count, oldest_due, live, stale = row
    age = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
    return QueueDepth(due=due_count, processing=live, stale=stale, oldest_due_age_seconds=age, negative_balances=negative)


def queue_health(*, session: Session, admin: User, now: datetime | None = None) -> QueueHealth:
    """How the queue stands now: what is waiting, for how long, and what has been failing."""
    require_admin(session=session, admin=admin)
    now = now or utcnow()
    since = now - RECENT
    counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).tuples().all())
    oldest = session.execute(
        select(Job.id, Job.created_at).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at, Job.id).limit(1)
    ).first()
    failed = session.execute(
        select(func.coalesce(Job.error_code, "unknown"), func.count())
        .where(Job.status == JobStatus.FAILED, Job.finished_at >= since)
        .group_by(Job.error_code)
    ).tuples().all()
    code = JobEvent.detail["error_code"].as_string()
    retried = session.execute(
        select(func.coalesce(code, "unknown"), func.count())
        .where(JobEvent.type == "attempt_failed", JobEvent.at >= since)
        .group_by(code)
    ).tuples().all()
    session.commit()
    return QueueHealth(
        as_of=now,
        jobs_by_status={status: counts.get(status, 0) for status in JOB_STATUSES},
        oldest_queued_job_id=oldest.id if oldest else None,
        oldest_queued_age_seconds=max(0.0, (now - oldest.created_at).total_seconds()) if oldest else None,
        failed_last_hour=dict(failed),
        retried_last_hour=dict(retried),
    )
