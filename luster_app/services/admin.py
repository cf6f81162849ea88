"""The operator's console: users and their credits, jobs, prompt versions, Stripe events.

Every function but `set_admin` (the shell's bootstrap, `luster admin grant`) takes the acting
`admin` and refuses anyone the database does not list as an admin at that moment (Forbidden,
403), so the API, the admin page and any future caller get the same check, and revoking admin
takes effect on the very next call. Queue health is in `services/queue_health.py`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update
from sqlmodel import Session

from luster_app.models import Credits, Job, JobStatus, PromptVersion, StripeEvent, User, utcnow
from luster_app.presets import get_preset
from luster_app.services import presets as preset_service
from luster_app.services.errors import Conflict, Forbidden, Invalid, NotFound, PaymentRequired
from luster_app.services.jobs import JobView, add_event, cancel_queued, get_job_for_user, lock_credits, start_transaction
from luster_app.services.takeback import Drift, adjust_balance, find_drift
from luster_app.services.users import credit_summary, find_user_by_email

log = logging.getLogger(__name__)

MAX_PAGE = 200
MAX_REASON = 500
MAX_ADJUSTMENT = 100_000
JOB_STATUSES = (
    JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.NEEDS_REVIEW, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED,
)
T = TypeVar("T")
CANCELED_MESSAGE = "Canceled by Luster support before it started. No credit was charged."
OWNER_CANCELED_MESSAGE = "You canceled this before it started. No credit was charged."


@dataclass(frozen=True)
class UserRow:
    """A user as the console lists them: who, and their credits."""

    id: uuid.UUID
    email: str
    is_admin: bool
    created_at: datetime
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@dataclass(frozen=True)
class JobRow:
    """A job and the email of its owner."""

    job: Job
    email: str


@dataclass(frozen=True)
class AdminJobView:
    """A job's timeline and outputs (as its owner sees them) and who owns it."""

    view: JobView
    email: str


@dataclass(frozen=True)
class PromptVersionRow:
    """A prompt version and how many jobs used it."""

    version: PromptVersion
    jobs: int


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and how many rows match in all."""

    items: list[T]
    total: int


@dataclass(frozen=True)
class JobFilter:
    """Which jobs to list; every field left None matches everything."""

    status: str | None = None
    email: str | None = None  # part of the owner's email
    preset: str | None = None
    prompt_version: int | None = None  # with `preset`: jobs that used this version of it
    min_age: timedelta | None = None  # created at least this long ago
    max_age: timedelta | None = None  # created at most this long ago
    now: datetime = field(default_factory=utcnow)


def require_admin(*, session: Session, admin: User) -> None:
    """Forbidden unless `admin` is an admin in the database now (not as some old copy says)."""
    is_admin = session.execute(select(User.is_admin).where(User.id == admin.id)).scalar()
    # End the read: a write that follows must start its own transaction (SQLite cannot upgrade a read).
    session.commit()
    if not is_admin:
        raise Forbidden("This is for Luster administrators only.")


def set_admin(*, session: Session, email: str, is_admin: bool = True) -> User:
    """Make the user with this email an admin (or not); for the operator's shell, not the web."""
    user = find_user_by_email(session=session, email=email)
    if user is None:
        raise NotFound(f"No user with email {email.strip().lower()}; they must sign in once first.")
    session.execute(update(User).where(User.id == user.id).values(is_admin=is_admin))
    session.commit()
    session.refresh(user)
    return user


def _page_bounds(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, MAX_PAGE)), max(0, offset)


def _user_rows_query() -> Any:
    balance, reserved = func.coalesce(Credits.balance, 0), func.coalesce(Credits.reserved, 0)
    return select(User, balance, reserved).outerjoin(Credits, Credits.user_id == User.id)


def _user_row(user: User, balance: int, reserved: int) -> UserRow:
    return UserRow(
        id=user.id, email=user.email, is_admin=user.is_admin, created_at=user.created_at, balance=balance, reserved=reserved
    )


def list_users(*, session: Session, admin: User, search: str = "", limit: int = 50, offset: int = 0) -> Page[UserRow]:
    """Users whose email contains `search` (all when empty), newest first, with their credits."""
    require_admin(session=session, admin=admin)
    limit, offset = _page_bounds(limit, offset)
    conditions = [User.email.contains(search.strip().lower(), autoescape=True)] if search.strip() else []
    total = session.execute(select(func.count()).select_from(User).where(*conditions)).scalar_one()
    rows = session.execute(
        _user_rows_query().where(*conditions).order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
    ).all()
    session.commit()
    return Page(items=[_user_row(*row) for row in rows], total=total)


def get_user(*, session: Session, admin: User, user_id: uuid.UUID) -> UserRow:
    """One user with their credits; NotFound if there is none."""
    require_admin(session=session, admin=admin)
    row = session.execute(_user_rows_query().where(User.id == user_id)).first()
    session.commit()
    if row is None:
        raise NotFound("User not found.")
    return _user_row(*row)


def adjust_credits(*, session: Session, admin: User, user_id: uuid.UUID, delta: int, reason: str) -> UserRow:
    """Grant (positive) or take (negative) credits as a ledger `adjustment` carrying `reason`.

    Taking never drives the balance below zero, nor takes credits that jobs being processed will
    charge; it cancels the queued jobs the balance left no longer covers (services/takeback.py).
    """
    require_admin(session=session, admin=admin)
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why: the reason goes on the photographer's credit history.")
    if len(reason) > MAX_REASON:
        raise Invalid(f"Keep the reason under {MAX_REASON} characters.")
    if delta == 0 or abs(delta) > MAX_ADJUSTMENT:
        raise Invalid(f"Grant or take between 1 and {MAX_ADJUSTMENT} credits.")
    canceled = adjust_balance(session=session, user_id=user_id, delta=delta, reason=reason)
    if canceled:
        log.info("admin %s's take-back canceled %d queued jobs of user %s", admin.id, len(canceled), user_id)
    log.info("admin %s adjusted credits of user %s by %+d", admin.id, user_id, delta)
    return get_user(session=session, admin=admin, user_id=user_id)


def _job_conditions(filters: JobFilter) -> list[Any]:
    conditions: list[Any] = []
    if filters.status:
        if filters.status not in JOB_STATUSES:
            raise Invalid(f"Unknown job status {filters.status!r}; choose one of: {', '.join(JOB_STATUSES)}.")
        conditions.append(Job.status == filters.status)
    if filters.email and filters.email.strip():
        conditions.append(User.email.contains(filters.email.strip().lower(), autoescape=True))
    if filters.preset:
        get_preset(filters.preset)  # Invalid (422) for a preset that does not exist
        conditions.append(Job.preset == filters.preset)
    if filters.prompt_version is not None:
        if not filters.preset:
            raise Invalid("A prompt version is numbered per preset: give the preset too.")
        version_id = select(PromptVersion.id).where(
            PromptVersion.preset == filters.preset, PromptVersion.version == filters.prompt_version
        )
        conditions.append(Job.prompt_version_id == version_id.scalar_subquery())
    if filters.min_age is not None:
        conditions.append(Job.created_at <= filters.now - filters.min_age)
    if filters.max_age is not None:
        conditions.append(Job.created_at >= filters.now - filters.max_age)
    return conditions


def list_jobs(
    *, session: Session, admin: User, filters: JobFilter | None = None, limit: int = 50, offset: int = 0
) -> Page[JobRow]:
    """Jobs of every user matching `filters`, newest first, each with its owner's email."""
    require_admin(session=session, admin=admin)
    limit, offset = _page_bounds(limit, offset)
    conditions = _job_conditions(filters or JobFilter())
    joined = select(Job, User.email).join(User, User.id == Job.user_id).where(*conditions)
    total = session.execute(select(func.count()).select_from(joined.subquery())).scalar_one()
    rows = session.execute(joined.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)).all()
    session.commit()
    return Page(items=[JobRow(job=job, email=email) for job, email in rows], total=total)


def job_timeline(*, session: Session, admin: User, job_id: uuid.UUID) -> AdminJobView:
    """Any user's job with its event timeline and outputs, and its owner's email."""
    require_admin(session=session, admin=admin)
    owner = session.execute(select(Job.user_id, User.email).join(User, User.id == Job.user_id).where(Job.id == job_id)).first()
    if owner is None:
        raise NotFound("Job not found.")
    view = get_job_for_user(session=session, user_id=owner.user_id, job_id=job_id)
    session.commit()
    return AdminJobView(view=view, email=owner.email)


def retry_job(*, session: Session, admin: User, job_id: uuid.UUID, extra_attempts: int) -> Job:
    """A failed job back to `queued`, due now, with `extra_attempts` more attempts than it has used.

    Like any job it reserves one of its owner's available credits (402 if none is free) and is
    charged only if it succeeds; the job keeps its prompt version and text.
    """
    require_admin(session=session, admin=admin)
    if extra_attempts < 1:
        raise Invalid("A retry needs at least one more attempt.")
    owner_id = session.execute(select(Job.user_id).where(Job.id == job_id)).scalar()
    if owner_id is None:
        raise NotFound("Job not found.")
    start_transaction(session)
    try:
        lock_credits(session, owner_id)  # first: a credit decision for this user at a time
        job = session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise NotFound("Job not found.")
        if job.status != JobStatus.FAILED:
            raise Conflict(f"Only a failed job can be retried; this one is {job.status}.")
        if credit_summary(session=session, user_id=owner_id)["available"] < 1:
            raise PaymentRequired("The photographer has no credit available for this retry; grant one first.")
        previous = {"error_code": job.error_code, "attempts": job.attempts}
        values = {
            "status": JobStatus.QUEUED, "max_attempts": job.attempts + extra_attempts, "run_after": utcnow(),
            "finished_at": None, "lease_owner": None, "lease_expires_at": None, "error_code": None, "error_message": None,
        }
        session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.FAILED).values(**values))
        add_event(session, job_id, "admin_retry", admin_id=str(admin.id), max_attempts=values["max_attempts"], previous=previous)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("admin %s retried job %s", admin.id, job_id)
    session.refresh(job)
    return job


def cancel_job(*, session: Session, job_id: uuid.UUID, admin: User | None = None, owner_id: uuid.UUID | None = None) -> Job:
    """A queued job to `canceled`: no worker will run it, nothing is charged, and its reserved
    credit is free at once. A job being processed belongs to its worker: Conflict (409).

    Called for support by an `admin`, or for a photographer by `owner_id` (the job's owner:
    anyone else's job is NotFound, as for a job that does not exist).
    """
    if (admin is None) == (owner_id is None):
        raise ValueError("cancel_job needs exactly one of admin and owner_id")
    if admin is not None:
        require_admin(session=session, admin=admin)
    whose = [] if owner_id is None else [Job.user_id == owner_id]
    by_owner = owner_id is not None
    start_transaction(session)
    try:
        owner = owner_id or session.execute(select(Job.user_id).where(Job.id == job_id)).scalar()
        if owner is not None:
            # First, as for every change of a job's reservation: the cancel moves the owner's
            # reserved count (credits.reserved, kept by the database), and code that locks the
            # credits row and then the queued jobs (a refund's take-back) would deadlock with a
            # cancel that took the job first.
            lock_credits(session, owner)
        # Only the owner's (or, for an admin, any) job; cancel_queued is conditional on `queued`.
        job = session.execute(
            select(Job).where(Job.id == job_id, *whose).execution_options(populate_existing=True)
        ).scalars().first()
        if job is not None:
            if by_owner:
                canceled = cancel_queued(session, [job_id], message=OWNER_CANCELED_MESSAGE, event="canceled", by="owner")
            else:
                canceled = cancel_queued(session, [job_id], message=CANCELED_MESSAGE, event="admin_cancel",
                                         admin_id=str(admin.id))
            job = session.get(Job, job_id, populate_existing=True) if canceled else job
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if job is None:
        raise NotFound("Job not found.")
    if not canceled:
        if job.status == JobStatus.PROCESSING:
            raise Conflict(
                "This photo is being enhanced right now and can no longer be canceled; it is charged only if it succeeds."
                if by_owner else "This job is being processed: its worker owns it until it succeeds or fails."
            )
        raise Conflict(f"Only a queued job can be canceled; this one is {job.status}.")
    log.info("%s canceled job %s", "its owner" if by_owner else f"admin {admin.id}", job_id)
    return job


def list_prompt_versions(*, session: Session, admin: User, preset: str) -> list[PromptVersionRow]:
    """Every version of the preset's prompt, newest first, with how many jobs used each."""
    require_admin(session=session, admin=admin)
    get_preset(preset)
    rows = session.execute(
        select(PromptVersion, func.count(Job.id))
        .outerjoin(Job, Job.prompt_version_id == PromptVersion.id)
        .where(PromptVersion.preset == preset)
        .group_by(PromptVersion.id)
        .order_by(PromptVersion.version.desc())
    ).all()
    session.commit()
    return [PromptVersionRow(version=version, jobs=jobs) for version, jobs in rows]


def add_prompt_version(*, session: Session, admin: User, preset: str, template: str, activate: bool = False) -> PromptVersion:
    """A new version of the preset's template, made active if asked; jobs already made keep theirs."""
    require_admin(session=session, admin=admin)
    get_preset(preset)
    if not template.strip():
        raise Invalid("The template is empty.")
    row = preset_service.add_prompt_version(session=session, preset=preset, template=template, activate=activate)
    log.info("admin %s added %s prompt version %d (active: %s)", admin.id, preset, row.version, row.is_active)
    return row


def activate_prompt_version(*, session: Session, admin: User, preset: str, version: int) -> PromptVersion:
    """Make `version` the preset's active template: new jobs use it, old jobs keep theirs."""
    require_admin(session=session, admin=admin)
    row = preset_service.activate_prompt_version(session=session, preset=preset, version=version)
    log.info("admin %s activated %s prompt version %d", admin.id, preset, version)
    return row


def credit_drift(*, session: Session, admin: User) -> list[Drift]:
    """Every user whose balance differs from the sum of their ledger (normally none)."""
    require_admin(session=session, admin=admin)
    return find_drift(session=session)


def recent_stripe_events(*, session: Session, admin: User, limit: int = 50) -> list[StripeEvent]:
    """The latest Stripe webhook events received and what handling each one did."""
    require_admin(session=session, admin=admin)
    limit, _ = _page_bounds(limit, 0)
    events = list(session.execute(select(StripeEvent).order_by(StripeEvent.received_at.desc()).limit(limit)).scalars())
    session.commit()
    return events
