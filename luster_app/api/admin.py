"""The operator's API under /api/admin: users and credits, jobs, prompt versions, Stripe events, stats.

Each handler passes the caller to a `services.admin` function, which refuses non-admins (403)
before it reads anything; a request without a valid token never gets that far (401).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, Field

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.api.jobs import JobDetailOut, JobOut, _detail
from luster_app.services import admin
from luster_app.services.queue_health import queue_health

router = api_router(prefix="/admin", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=admin.MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Minutes = Annotated[int | None, Query(ge=0, le=10 * 365 * 24 * 60)]
PresetName = Annotated[str, Path(max_length=32)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    is_admin: bool
    created_at: datetime
    balance: int
    reserved: int
    available: int

    @classmethod
    def of(cls, row: admin.UserRow) -> UserOut:
        return cls(
            id=row.id, email=row.email, is_admin=row.is_admin, created_at=row.created_at, balance=row.balance,
            reserved=row.reserved, available=row.available,
        )


class UsersOut(BaseModel):
    users: list[UserOut]
    total: int


class AdjustmentIn(BaseModel):
    delta: int = Field(description="credits to grant (positive) or take (negative)")
    reason: str = Field(max_length=admin.MAX_REASON, description="shown on the photographer's credit history")


class AdminJobOut(JobOut):
    user_id: uuid.UUID
    email: str

    @classmethod
    def of_row(cls, row: admin.JobRow) -> AdminJobOut:
        return cls(**JobOut.of(row.job).model_dump(), user_id=row.job.user_id, email=row.email)


class JobsOut(BaseModel):
    jobs: list[AdminJobOut]
    total: int


class AdminJobDetailOut(JobDetailOut):
    user_id: uuid.UUID
    email: str


class RetryIn(BaseModel):
    extra_attempts: int | None = Field(None, ge=1, le=20, description="default: the deployment's JOB_MAX_ATTEMPTS")


class PromptVersionOut(BaseModel):
    id: int
    preset: str
    version: int
    template: str
    is_active: bool
    created_at: datetime
    jobs: int


class PromptVersionIn(BaseModel):
    template: str = Field(min_length=1, max_length=20_000)
    activate: bool = False


class StripeEventOut(BaseModel):
    id: str
    type: str
    received_at: datetime
    processed_at: datetime | None
    outcome: str


class StatsOut(BaseModel):
    as_of: datetime
    jobs_by_status: dict[str, int]
    oldest_queued_job_id: uuid.UUID | None
    oldest_queued_age_seconds: float | None
    failed_last_hour: dict[str, int]
    retried_last_hour: dict[str, int]


def _version_out(row: admin.PromptVersionRow) -> PromptVersionOut:
    return PromptVersionOut(**row.version.model_dump(exclude={"params_schema"}), jobs=row.jobs)


def _minutes(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(minutes=value)


@router.get("/users", response_model=UsersOut)
def list_users(
    user: CurrentUser, session: DbSession, q: Annotated[str, Query(max_length=320)] = "", limit: Limit = 50, offset: Offset = 0,
) -> UsersOut:
    """Users whose email contains `q`, newest first, with balance, reserved and available credits."""
    page = admin.list_users(session=session, admin=user, search=q, limit=limit, offset=offset)
    return UsersOut(users=[UserOut.of(row) for row in page.items], total=page.total)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: uuid.UUID, user: CurrentUser, session: DbSession) -> UserOut:
    """One user with their credits."""
    return UserOut.of(admin.get_user(session=session, admin=user, user_id=user_id))


@router.post("/users/{user_id}/credits", response_model=UserOut)
def adjust_credits(user_id: uuid.UUID, body: AdjustmentIn, user: CurrentUser, session: DbSession) -> UserOut:
    """Grant or take credits: a ledger `adjustment` with the reason; answers the new balance."""
    row = admin.adjust_credits(session=session, admin=user, user_id=user_id, delta=body.delta, reason=body.reason)
    return UserOut.of(row)


@router.get("/jobs", response_model=JobsOut)
def list_jobs(
    user: CurrentUser,
    session: DbSession,
    status: Annotated[str | None, Query(max_length=16)] = None,
    email: Annotated[str | None, Query(max_length=320, description="part of the owner's email")] = None,
    preset: Annotated[str | None, Query(max_length=32)] = None,
    prompt_version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="with preset")] = None,
    min_age_minutes: Minutes = None,
    max_age_minutes: Minutes = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobsOut:
    """Every user's jobs, newest first, filtered by status, owner email, preset (and prompt version), age."""
    filters = admin.JobFilter(
        status=status, email=email, preset=preset, prompt_version=prompt_version,
        min_age=_minutes(min_age_minutes), max_age=_minutes(max_age_minutes),
    )
    page = admin.list_jobs(session=session, admin=user, filters=filters, limit=limit, offset=offset)
    return JobsOut(jobs=[AdminJobOut.of_row(row) for row in page.items], total=page.total)


@router.get("/jobs/{job_id}", response_model=AdminJobDetailOut)
def get_job(job_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> AdminJobDetailOut:
    """A job's timeline (every event), outputs with signed URLs, and its owner."""
    found = admin.job_timeline(session=session, admin=user, job_id=job_id)
    detail = _detail(context, found.view)
    return AdminJobDetailOut(**detail.model_dump(), user_id=found.view.job.user_id, email=found.email)


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
def retry_job(job_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx, body: RetryIn | None = None) -> JobOut:
    """A failed job back to the queue with more attempts; 402 if its owner has no credit free."""
    extra = (body.extra_attempts if body else None) or context.settings.job_max_attempts
    return JobOut.of(admin.retry_job(session=session, admin=user, job_id=job_id, extra_attempts=extra))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, user: CurrentUser, session: DbSession) -> JobOut:
    """A queued job canceled, uncharged; 409 if it is processing or already over."""
    return JobOut.of(admin.cancel_job(session=session, admin=user, job_id=job_id))


@router.get("/presets/{preset}/prompt-versions", response_model=list[PromptVersionOut])
def list_prompt_versions(preset: PresetName, user: CurrentUser, session: DbSession) -> list[PromptVersionOut]:
    """Every version of the preset's prompt, newest first, with how many jobs used each."""
    return [_version_out(row) for row in admin.list_prompt_versions(session=session, admin=user, preset=preset)]


@router.post("/presets/{preset}/prompt-versions", status_code=201, response_model=PromptVersionOut)
def add_prompt_version(preset: PresetName, body: PromptVersionIn, user: CurrentUser, session: DbSession) -> PromptVersionOut:
    """A new version of the preset's template (422 if it names unknown fields), active if asked."""
    row = admin.add_prompt_version(session=session, admin=user, preset=preset, template=body.template, activate=body.activate)
    return _version_out(admin.PromptVersionRow(version=row, jobs=0))


@router.post("/presets/{preset}/prompt-versions/{version}/activate", response_model=PromptVersionOut)
def activate_prompt_version(
    preset: PresetName, version: VersionNumber, user: CurrentUser, session: DbSession
) -> PromptVersionOut:
    """Make this version the preset's active template: new jobs use it, old jobs keep theirs."""
    admin.activate_prompt_version(session=session, admin=user, preset=preset, version=version)
    [row] = [r for r in admin.list_prompt_versions(session=session, admin=user, preset=preset) if r.version.version == version]
    return _version_out(row)


@router.get("/presets/{preset}/prompt-versions/{version}/jobs", response_model=JobsOut)
def prompt_version_jobs(
    preset: PresetName, version: VersionNumber, user: CurrentUser, session: DbSession,
    limit: Limit = 50, offset: Offset = 0,
) -> JobsOut:
    """The jobs that used this version of the preset's prompt, newest first."""
    filters = admin.JobFilter(preset=preset, prompt_version=version)
    page = admin.list_jobs(session=session, admin=user, filters=filters, limit=limit, offset=offset)
    return JobsOut(jobs=[AdminJobOut.of_row(row) for row in page.items], total=page.total)


@router.get("/stripe-events", response_model=list[StripeEventOut])
def stripe_events(user: CurrentUser, session: DbSession, limit: Limit = 50) -> list[StripeEventOut]:
    """The latest Stripe webhook events and what handling each did."""
    events = admin.recent_stripe_events(session=session, admin=user, limit=limit)
    return [StripeEventOut.model_validate(event, from_attributes=True) for event in events]


class DriftOut(BaseModel):
    user_id: uuid.UUID
    email: str
    balance: int
    ledger_sum: int
    reserved: int
    reserving_jobs: int


@router.get("/credit-drift", response_model=list[DriftOut])
def credit_drift(user: CurrentUser, session: DbSession) -> list[DriftOut]:
    """Users whose balance differs from the sum of their ledger, or whose reserved count from
    their jobs holding a credit (`luster audit`); normally empty."""
    return [DriftOut.model_validate(drift, from_attributes=True) for drift in admin.credit_drift(session=session, admin=user)]


@router.get("/stats", response_model=StatsOut)
def stats(user: CurrentUser, session: DbSession) -> StatsOut:
    """Queue health: jobs by status, the oldest queued job's age, failures in the last hour by code."""
    return StatsOut.model_validate(queue_health(session=session, admin=user), from_attributes=True)
