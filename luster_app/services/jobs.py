"""Jobs on behalf of a photographer: create one or a batch against their credits, read one back.

The worker's side of a job's life (claim, heartbeat, finish, retry) is in `job_queue.py`.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, literal, select, update
from sqlalchemy.sql.base import Executable
from sqlmodel import Session

from luster_app.db import is_postgres
from luster_app.metrics import JOBS_CREATED
from luster_app.models import Asset, AssetKind, AssetStatus, Bracket, Credits, Job, JobEvent, JobStatus, Shoot, utcnow
from luster_app.presets import validate_params
from luster_app.services.errors import Conflict, Invalid, NotFound, PaymentRequired
from luster_app.services.idempotency import IdempotentRequest, first_answer, remember_answer
from luster_app.services.presets import active_prompt
from luster_app.services.ratelimit import check_rate_limit

if TYPE_CHECKING:
    from luster_app.context import AppContext

MAX_BATCH = 500
BUY_CREDITS = "Buy a credit pack on the Billing page to continue."


@dataclass(frozen=True)
class JobOptions:
    """What every new job gets from the deployment: its engine, attempt limit and rate limit."""

    engine: str
    model: str
    max_attempts: int
    jobs_per_minute: int

    @classmethod
    def for_context(cls, context: AppContext) -> JobOptions:
        """The options of this deployment: its image engine and its settings."""
        settings = context.settings
        engine = context.image_engine
        return cls(
            engine=engine.name, model=engine.model, max_attempts=settings.job_max_attempts,
            jobs_per_minute=settings.jobs_per_minute_per_user,
        )


@dataclass(frozen=True)
class OutputView:
    """One output of a job and its thumbnail."""

    output: Asset
    thumb: Asset | None

    @property
    def viewable(self) -> Asset:
        """What its owner may fetch now: an edit held for review only at thumbnail size, as its
        full size is had by accepting (and paying for) it."""
        return self.thumb if self.output.status == AssetStatus.HELD and self.thumb else self.output


@dataclass(frozen=True)
class JobView:
    """A job as its owner sees it: the row, its event timeline, its outputs."""

    job: Job
    events: list[JobEvent] = field(default_factory=list)
    outputs: list[OutputView] = field(default_factory=list)


def event_row(job_id: uuid.UUID, event_type: str, **detail: Any) -> dict[str, Any]:
    """One transition or attempt of a job, as a `job_events` row for `add_events`."""
    return {"job_id": job_id, "at": utcnow(), "type": event_type, "detail": detail}


def add_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Record events inside the caller's transaction, in one statement (a plain table INSERT:
    events are written on every transition, and need none of the ORM's bookkeeping)."""
    if rows:
        session.execute(insert(JobEvent.__table__), rows)


def add_event(session: Session, job_id: uuid.UUID, event_type: str, **detail: Any) -> None:
    """Record one transition or attempt of a job, inside the caller's transaction."""
    add_events(session, [event_row(job_id, event_type, **detail)])


def start_transaction(session: Session) -> None:
    """End whatever the session had open, so the next statement starts a fresh transaction.

    On SQLite that statement then takes the write lock first, never upgrading a read snapshot
    (which SQLite refuses with SQLITE_BUSY instead of waiting).
    """
    if session.in_transaction():
        session.commit()


def lock_credits(session: Session, user_id: uuid.UUID) -> int:
    """Serialise credit decisions for one user until the transaction ends; returns the credits
    they have available (balance less those reserved by their jobs), read under the lock.

    PostgreSQL: a row lock on the user's credits row. SQLite has no row locks; a no-op write
    takes the database's write lock, which is what BEGIN IMMEDIATE would do.
    """
    credits = Credits.__table__.c  # the table's columns: a plain statement skips the ORM's compile step
    available = credits.balance - credits.reserved
    if is_postgres(session.get_bind()):
        locked = select(available).where(credits.user_id == user_id).with_for_update()
    else:
        locked = update(Credits.__table__).where(credits.user_id == user_id).values(balance=credits.balance).returning(available)
    return session.execute(locked).scalar() or 0


def cancel_queued(
    session: Session, job_ids: list[uuid.UUID], *, message: str, event: str, **detail: Any
) -> list[uuid.UUID]:
    """Cancel those of `job_ids` still queued, uncharged, saying why on each; inside the caller's
    transaction. Returns the ids canceled: a job a worker has claimed meanwhile belongs to it."""
    if not job_ids:
        return []
    # Conditional on `queued`, so a worker's claim and this cancel cannot both win.
    canceled = list(session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELED, finished_at=utcnow(), error_code="canceled", error_message=message)
        .returning(Job.id)
    ).scalars())
    add_events(session, [event_row(job_id, event, **detail) for job_id in canceled])
    return canceled


def create_job(
    *, session: Session, user_id: uuid.UUID, asset_id: uuid.UUID | None = None, bracket_id: uuid.UUID | None = None,
    preset: str, params: dict[str, Any] | None, options: JobOptions, idempotency_key: str | None = None,
) -> Job:
    """Queue one job on the caller's photo, or on their bracket group (`bracket_id`: its frames are
    merged first), reserving one of their available credits. With an `idempotency_key` already
    used for this request, the job it queued (as first answered)."""
    if (asset_id is None) == (bracket_id is None):
        raise Invalid("Name either a photo (asset_id) or a bracket (bracket_id).")
    body = {"asset_id": str(asset_id), "preset": preset, "params": params or {}}
    if bracket_id is not None:
        body = {"bracket_id": str(bracket_id), "preset": preset, "params": params or {}}
    request = IdempotentRequest.of(idempotency_key, scope="job", body=body)
    return _create_jobs(
        session=session, user_id=user_id, asset_ids=[asset_id] if asset_id else [],
        bracket_ids=[bracket_id] if bracket_id else [], preset=preset, params=params, options=options, request=request,
    )[0]


def create_batch(
    *, session: Session, user_id: uuid.UUID, asset_ids: list[uuid.UUID], bracket_ids: list[uuid.UUID] | None = None,
    preset: str, params: dict[str, Any] | None, options: JobOptions, idempotency_key: str | None = None,
) -> list[Job]:
    """Queue one job per photo and per bracket group, all or nothing: every one must qualify and
    every credit be available. With an `idempotency_key` already used for this request, the jobs it queued."""
    unique_ids = list(dict.fromkeys(asset_ids))
    unique_brackets = list(dict.fromkeys(bracket_ids or []))
    if not unique_ids and not unique_brackets:
        raise Invalid("Pick at least one photo.")
    if len(unique_ids) + len(unique_brackets) > MAX_BATCH:
        raise Invalid(f"A batch can hold at most {MAX_BATCH} photos.")
    body = {"asset_ids": [str(a) for a in asset_ids], "preset": preset, "params": params or {}}
    if unique_brackets:
        body["bracket_ids"] = [str(b) for b in unique_brackets]
    request = IdempotentRequest.of(idempotency_key, scope="batch", body=body)
    return _create_jobs(session=session, user_id=user_id, asset_ids=unique_ids, bracket_ids=unique_brackets, preset=preset,
                        params=params, options=options, request=request)


def _replayed(session: Session, user_id: uuid.UUID, request: IdempotentRequest | None) -> list[Job] | None:
    """The jobs as first answered for this key, or None if it is new (the caller commits)."""
    if request is None:
        return None
    answer = first_answer(session=session, user_id=user_id, request=request)
    return None if answer is None else [Job.model_validate(job) for job in answer.response["jobs"]]


def _create_jobs(
    *, session: Session, user_id: uuid.UUID, asset_ids: list[uuid.UUID], bracket_ids: list[uuid.UUID], preset: str,
    params: dict[str, Any] | None, options: JobOptions, request: IdempotentRequest | None,
) -> list[Job]:
    params, window_pull = _window_pull(params, brackets_only=bool(bracket_ids) and not asset_ids)
    # SQLite cannot turn a read transaction into a write (SQLITE_BUSY at once): the rate limit's
    # write starts a transaction of its own. PostgreSQL carries on with any read the caller left
    # open: the API's sign-in read (the user), then ends it with the rate limit's commit.
    sqlite = not is_postgres(session.get_bind())
    if sqlite:
        start_transaction(session)
    try:
        # A retry of a request already answered creates nothing and counts against no limit.
        replayed = _replayed(session, user_id, request)
        if replayed is not None or sqlite:
            session.commit()
        if replayed is not None:
            return replayed
        # Its own transaction: a request refused below still counts against the limit.
        check_rate_limit(
            session=session, bucket=f"jobs:{user_id}", limit=options.jobs_per_minute, window_seconds=60,
            message="Too many enhancement requests at once; wait a minute and try again.",
        )
        # Before the credit lock, which serialises every credit decision of this user: only what
        # must be decided under it (the photos, the credits) is read while holding it.
        valid_params, prompt_version_id, prompt_text = _resolve_prompt(session, preset, params or {})
        if window_pull is not None:
            valid_params = {**valid_params, "window_pull": window_pull}
        # What every job of the request shares, as a row: each job's is a copy of it.
        shared = _new_job_row() | {
            "user_id": user_id, "preset": preset, "prompt_version_id": prompt_version_id, "prompt_text": prompt_text,
            "engine": options.engine, "model": options.model, "max_attempts": options.max_attempts,
        }
        created_at = utcnow()
        session.commit()
        available = lock_credits(session, user_id)
        # Again under the lock: a duplicate sent at the same moment waited here for the first.
        replayed = _replayed(session, user_id, request)
        if replayed is not None:
            session.commit()
            return replayed
        shoot_privacy = _check_assets(session, user_id, asset_ids)
        # A group's job runs on its merged photo (made by the worker): one credit per group.
        groups = _bracket_photos(session, user_id, bracket_ids)
        targets = [(asset_id, None) for asset_id in asset_ids] + groups
        _check_available(available, needed=len(targets))
        privacy = {} if "auto_privacy" in (params or {}) else shoot_privacy | _shoot_privacy(session, [p for p, _ in groups])
        rows = []
        for n, (asset_id, bracket_id) in enumerate(targets):
            # A microsecond apart: the queue (by `run_after`) and the gallery (by `created_at`)
            # then take a batch's jobs in the order they were asked for.
            at = created_at + timedelta(microseconds=n)
            rows.append(shared | {
                "id": uuid.uuid4(), "asset_id": asset_id, "bracket_id": bracket_id, "created_at": at, "run_after": at,
                "params": {**valid_params, "auto_privacy": privacy[asset_id]} if privacy else valid_params,
            })
        _insert_jobs(session, rows, created={"preset": preset, "engine": options.engine})
        jobs = None
        if request is not None:
            jobs = [Job(**row) for row in rows]
            answer = {"jobs": [job.model_dump(mode="json") for job in jobs]}
            remember_answer(session=session, user_id=user_id, request=request, status_code=201, response=answer)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    JOBS_CREATED.labels(preset, options.engine).inc(len(rows))
    # The jobs as inserted, built once the credits lock is released.
    return jobs if jobs is not None else [Job(**row) for row in rows]


def _window_pull(params: dict[str, Any] | None, *, brackets_only: bool) -> tuple[dict[str, Any], bool | None]:
    """The params without `window_pull`, and its value: an option of bracket jobs (window regions
    take their detail from the darkest frame), checked here as no preset has it."""
    params = dict(params or {}) if isinstance(params, dict) else params
    if not isinstance(params, dict) or "window_pull" not in params:
        return params, None
    window_pull = params.pop("window_pull")
    if not brackets_only:
        raise Invalid("window_pull applies to bracket groups only.")
    if not isinstance(window_pull, bool):
        raise Invalid("window_pull must be true or false.")
    return params, window_pull


def _bracket_photos(session: Session, user_id: uuid.UUID, bracket_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(merged photo, group) of each of the caller's groups; NotFound for anyone else's."""
    if not bracket_ids:
        return []
    rows = session.execute(
        select(Asset.bracket_id, Asset.id).join(Bracket, Bracket.id == Asset.bracket_id)
        .where(Bracket.id.in_(bracket_ids), Bracket.user_id == user_id, Asset.kind == AssetKind.MERGED)
    ).tuples().all()
    photos = dict(rows)
    if any(bracket_id not in photos for bracket_id in bracket_ids):
        raise NotFound("Bracket not found.")
    return [(photos[bracket_id], bracket_id) for bracket_id in bracket_ids]


def _check_assets(session: Session, user_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Refuse unless every photo is the caller's own, an original, uploaded and verified; returns
    each photo's shoot's Auto privacy setting (what a job that does not say takes)."""
    # The columns it decides on, from the tables: read under the credits lock, and the ORM costs more.
    assets, shoots = Asset.__table__.c, Shoot.__table__.c
    query = (
        select(assets.id, assets.kind, assets.status, assets.filename, shoots.auto_privacy)
        .join_from(Asset.__table__, Shoot.__table__, shoots.id == assets.shoot_id)
        .where(assets.id.in_(asset_ids), assets.user_id == user_id)
    )
    rows = session.execute(query).all()
    assets = {asset.id: asset for asset in rows}
    for asset_id in asset_ids:
        asset = assets.get(asset_id)
        if asset is None:
            raise NotFound("Photo not found.")
        if asset.kind != AssetKind.ORIGINAL:
            raise Invalid(f"{asset.filename} is an enhanced copy; pick the original photo to enhance.")
        if asset.status != AssetStatus.READY:
            state = "was rejected" if asset.status == AssetStatus.REJECTED else "has not finished uploading"
            raise Conflict(f"{asset.filename} {state}; only uploaded, verified photos can be enhanced.")
    return {asset.id: asset.auto_privacy for asset in rows}


def _shoot_privacy(session: Session, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Each (merged) photo's shoot's Auto privacy setting: what a job that does not say takes."""
    if not asset_ids:
        return {}
    rows = session.execute(select(Asset.id, Shoot.auto_privacy).join(Shoot, Shoot.id == Asset.shoot_id).where(Asset.id.in_(asset_ids)))
    return dict(rows.tuples().all())


def _resolve_prompt(session: Session, preset: str, params: dict[str, Any]) -> tuple[dict[str, Any], int | None, str]:
    """The validated params (422 if not) and the prompt version and text this job will use."""
    valid_params = validate_params(preset, params)
    prompt_version_id, prompt_text = active_prompt(session=session, preset=preset, params=valid_params)
    return valid_params, prompt_version_id, prompt_text


@functools.cache
def _new_job_row() -> dict[str, Any]:
    """Every column of a new job at the model's default, built once: a model object costs more than
    the job's insert. The caller sets the id, the times and what the request asks for."""
    return Job(user_id=uuid.UUID(int=0), asset_id=uuid.UUID(int=0), preset="", engine="").model_dump()


def _insert_jobs(session: Session, rows: list[dict[str, Any]], *, created: dict[str, Any]) -> None:
    """Insert the jobs (`rows`: every column's value) and their `created` events, inside the
    caller's transaction (holding the credits lock: the fewer round trips the sooner the next create
    of this photographer runs). Plain table INSERTs of the rows as built, not the ORM's flush: the
    jobs are answered as they are, never read back. PostgreSQL: one statement; SQLite (no INSERT
    in a WITH): two."""
    if not is_postgres(session.get_bind()):
        session.execute(insert(Job.__table__), rows)
        add_events(session, [event_row(row["id"], "created", **created) for row in rows])
        return
    event = {"event_at": utcnow(), "event_detail": created}
    session.execute(_insert_with_event_postgres(), [{f"job_{k}": v for k, v in row.items()} | event for row in rows])


@functools.cache
def _insert_with_event_postgres() -> Executable:
    """INSERT of one job and its `created` event, built once (its compiled form is then reused);
    parameters: each column prefixed `job_`, and `event_at`, `event_detail`."""
    jobs, events = Job.__table__, JobEvent.__table__
    values = {column.name: bindparam(f"job_{column.name}", type_=column.type) for column in jobs.c}
    inserted = insert(jobs).values(values).returning(jobs.c.id).cte("inserted")
    event = select(
        inserted.c.id, bindparam("event_at", type_=events.c.at.type), literal("created"),
        bindparam("event_detail", type_=events.c.detail.type),
    )
    return insert(events).from_select(["job_id", "at", "type", "detail"], event)


def _check_available(available: int, *, needed: int) -> None:
    if available >= needed:
        return
    if needed == 1:
        raise PaymentRequired(f"You have no credits available. {BUY_CREDITS}")
    have = max(available, 0)
    raise PaymentRequired(
        f"Enhancing {needed} photos needs {needed} credits and you have {have} available. {BUY_CREDITS}"
    )


def get_job_for_user(*, session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> JobView:
    """The caller's job with its events (oldest first) and outputs; NotFound for anyone else's."""
    job = session.execute(select(Job).where(Job.id == job_id, Job.user_id == user_id)).scalar_one_or_none()
    if job is None:
        raise NotFound("Job not found.")
    events = list(session.execute(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).scalars())
    outputs = list(
        session.execute(
            # A rejected edit's output is gone from storage: only its job's record remains.
            select(Asset).where(
                Asset.job_id == job_id, Asset.kind == AssetKind.OUTPUT, Asset.user_id == user_id,
                Asset.status != AssetStatus.REJECTED,
            ).order_by(Asset.version)
        ).scalars()
    )
    thumbs = {
        thumb.parent_asset_id: thumb
        for thumb in session.execute(
            select(Asset).where(Asset.parent_asset_id.in_([o.id for o in outputs]), Asset.kind == AssetKind.THUMB)
        ).scalars()
    } if outputs else {}
    return JobView(job=job, events=events, outputs=[OutputView(output=o, thumb=thumbs.get(o.id)) for o in outputs])

