"""Jobs: enhance one photo or a whole shoot, and follow a job to its outputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header
from pydantic import BaseModel, Field

from luster_app.api.deps import Ctx, CurrentUser, DbSession, UncheckedCaller, api_router
from luster_app.context import AppContext
from luster_app.models import Asset, Job
from luster_app.services.idempotency import MAX_KEY_LENGTH
from luster_app.services.admin import cancel_job
from luster_app.services.jobs import MAX_BATCH, JobOptions, JobView, create_batch, create_job, get_job_for_user
from luster_app.services.review import accept_job, reject_job

router = api_router(tags=["jobs"])


class JobCreate(BaseModel):
    """One photo (`asset_id`) or one bracket group (`bracket_id`: its frames merged first)."""

    asset_id: uuid.UUID | None = None
    bracket_id: uuid.UUID | None = None
    preset: str
    params: dict[str, Any] = Field(default_factory=dict)


class BatchCreate(BaseModel):
    asset_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_BATCH)
    bracket_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_BATCH)
    preset: str
    params: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    id: uuid.UUID
    asset_id: uuid.UUID  # a bracket job's: the group's merged photo
    bracket_id: uuid.UUID | None = None
    preset: str
    params: dict[str, Any]
    engine: str
    model: str
    prompt_version_id: int | None
    status: str
    attempts: int
    max_attempts: int
    error_code: str | None
    error_message: str | None
    # Honest edits: what the edit redrew inside and outside its preset's region (shares of the
    # photo, boxes as 0..1 fractions), and one line for a disclosure ("sky replaced; 0.2% …").
    alteration: dict[str, Any] | None = None
    alteration_summary: str | None = None
    corrections: dict[str, Any] | None
    created_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        out = cls.model_validate(job, from_attributes=True)
        out.alteration_summary = (job.alteration or {}).get("summary")
        return out


class BatchOut(BaseModel):
    jobs: list[JobOut]


class EventOut(BaseModel):
    at: datetime
    type: str
    detail: dict[str, Any]


class OutputOut(BaseModel):
    asset_id: uuid.UUID
    version: int | None
    filename: str
    width: int | None
    height: int | None
    bytes: int
    url: str
    thumb_url: str | None


class JobDetailOut(JobOut):
    outputs: list[OutputOut]
    events: list[EventOut]


def _signed(context: AppContext, asset: Asset) -> str:
    ttl = context.settings.signed_url_ttl_seconds
    return context.storage.signed_get_url(asset.storage_key, expires_in=ttl, download_name=asset.filename)


def _detail(context: AppContext, view: JobView) -> JobDetailOut:
    outputs = [
        OutputOut(
            asset_id=item.output.id, version=item.output.version, filename=item.output.filename, width=item.output.width,
            height=item.output.height, bytes=item.output.bytes, url=_signed(context, item.viewable),
            thumb_url=_signed(context, item.thumb) if item.thumb else None,
        )
        for item in view.outputs
    ]
    events = [EventOut(at=event.at, type=event.type, detail=event.detail) for event in view.events]
    return JobDetailOut(**JobOut.of(view.job).model_dump(), outputs=outputs, events=events)


# A client's retry of the same request sends the same key: it gets the first answer again, and
# nothing new is queued or reserved (24 hours; the same key on another request is 422).
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=MAX_KEY_LENGTH)]


@router.post("/jobs", status_code=201, response_model=JobOut)
def post_job(
    body: JobCreate, caller: UncheckedCaller, session: DbSession, context: Ctx,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Queue one photo, or one bracket group, for enhancement; reserves one available credit
    (charged only on success). A group's frames are merged first; `params.window_pull` (groups
    only) takes the windows' detail from the darkest frame."""
    job = create_job(
        session=session, user_id=caller.user(session).id, asset_id=body.asset_id, bracket_id=body.bracket_id,
        preset=body.preset, params=body.params, options=JobOptions.for_context(context), idempotency_key=idempotency_key,
    )
    return JobOut.of(job)


@router.post("/jobs/batch", status_code=201, response_model=BatchOut)
def post_batch(
    body: BatchCreate, caller: UncheckedCaller, session: DbSession, context: Ctx,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """Queue many photos with one preset, all or nothing against the available credits."""
    jobs = create_batch(
        session=session, user_id=caller.user(session).id, asset_ids=body.asset_ids, bracket_ids=body.bracket_ids,
        preset=body.preset, params=body.params, options=JobOptions.for_context(context), idempotency_key=idempotency_key,
    )
    return BatchOut(jobs=[JobOut.of(job) for job in jobs])


@router.get("/jobs/{job_id}", response_model=JobDetailOut)
def get_job(job_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> JobDetailOut:
    """Status, attempts, error, outputs with signed URLs, and the event timeline of the caller's job."""
    return _detail(context, get_job_for_user(session=session, user_id=user.id, job_id=job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def post_cancel(job_id: uuid.UUID, user: CurrentUser, session: DbSession) -> JobOut:
    """Cancel the caller's queued job: it becomes `canceled` and its reserved credit is free at
    once. 409 once it is being processed or has finished; 404 for another user's job."""
    return JobOut.of(cancel_job(session=session, owner_id=user.id, job_id=job_id))


@router.post("/jobs/{job_id}/accept", response_model=JobOut)
def post_accept(job_id: uuid.UUID, user: CurrentUser, session: DbSession) -> JobOut:
    """Accept an edit held for review: its output is delivered and one credit is charged (once).
    409 unless the job is `needs_review`; 404 for anyone else's job."""
    return JobOut.of(accept_job(session=session, user_id=user.id, job_id=job_id))


@router.post("/jobs/{job_id}/reject", response_model=JobOut)
def post_reject(job_id: uuid.UUID, user: CurrentUser, session: DbSession) -> JobOut:
    """Reject an edit held for review: nothing is charged and the job ends `failed`; run the
    preset again if you like. 409 unless the job is `needs_review`; 404 for anyone else's job."""
    return JobOut.of(reject_job(session=session, user_id=user.id, job_id=job_id))
