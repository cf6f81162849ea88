"""Every table of DESIGN.md §3 as SQLModel models; UTC timezone-aware timestamps throughout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC that always comes back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use luster_app.models.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _created_at() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class JobStatus:
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    # The edit redrew more outside the preset's region than allowed: kept, not delivered or
    # charged until its owner accepts it (then `succeeded`) or rejects it (then `failed`).
    NEEDS_REVIEW = "needs_review"
    ACTIVE = (QUEUED, PROCESSING)
    # Jobs that hold one of their owner's credits until they end.
    RESERVING = (QUEUED, PROCESSING, NEEDS_REVIEW)
    FINAL = (SUCCEEDED, FAILED, CANCELED)


class AssetKind:
    ORIGINAL = "original"
    OUTPUT = "output"
    THUMB = "thumb"
    # A bracket group's frames fused into one photo: the group's "original" (its outputs hang off it).
    MERGED = "merged"


class AssetStatus:
    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"
    HELD = "held"  # an output waiting for its owner's review: never listed, downloaded or shared


class LedgerKind:
    PURCHASE = "purchase"
    JOB = "job"
    REFUND = "refund"
    DISPUTE = "dispute"
    DISPUTE_WON = "dispute_won"
    ADJUSTMENT = "adjustment"
    REFUND_FAILED = "refund_failed"  # a refund that never reached the customer gives its credits back


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)  # the auth provider's `sub`
    email: str = Field(max_length=320, unique=True, index=True)
    created_at: datetime = _created_at()
    is_admin: bool = Field(default=False)
    # Set when the photographer closed the account: their tokens are refused from then on, and
    # `email` no longer holds their address (see services/account.py).
    closed_at: datetime | None = _ts()


class Credits(SQLModel, table=True):
    __tablename__ = "credits"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    balance: int = Field(default=0)
    # Jobs holding one of these credits (status in JobStatus.RESERVING), kept by the database:
    # triggers on `jobs` (migration 0021) move it on every insert, delete and status change.
    reserved: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class CreditLedger(SQLModel, table=True):
    __tablename__ = "credit_ledger"
    __table_args__ = (sa.UniqueConstraint("kind", "ref", name="uq_credit_ledger_kind_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    delta: int
    kind: str = Field(max_length=32)
    ref: str = Field(max_length=255)
    note: str = Field(default="", max_length=1000)
    created_at: datetime = _created_at()


class Shoot(SQLModel, table=True):
    __tablename__ = "shoots"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=200)
    address: str | None = Field(default=None, max_length=500)
    # California AB 723: caption scene-altering outputs as "Digitally altered" on download.
    disclose_alterations: bool = Field(default=True)
    # New jobs on this shoot blur faces and licence plates unless the job says otherwise.
    auto_privacy: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = _created_at()


class Asset(SQLModel, table=True):
    __tablename__ = "assets"
    # Output versions of one photo are unique: concurrent jobs on it cannot both store `_v{n}`.
    __table_args__ = (sa.Index("uq_assets_parent_version", "parent_asset_id", "version", unique=True),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    shoot_id: uuid.UUID = Field(foreign_key="shoots.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=16)
    storage_key: str = Field(max_length=512)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    bytes: int = Field(default=0)
    width: int | None = None
    height: int | None = None
    status: str = Field(default=AssetStatus.PENDING, max_length=16, index=True)
    # Why an upload was rejected, in words the UI can show.
    reject_reason: str | None = Field(default=None, max_length=500)
    # An output's or thumbnail's source asset; an output's job and version (`_v{n}`).
    parent_asset_id: uuid.UUID | None = Field(default=None, foreign_key="assets.id", index=True)
    # No foreign key: jobs already point at assets, and a cycle would break SQLite migrations.
    job_id: uuid.UUID | None = Field(default=None, index=True)
    version: int | None = None
    created_at: datetime = _created_at()
    # The abandoned-upload sweep's backoff: a pending photo whose settling keeps failing waits
    # longer each time, so it never holds up the newer ones behind it.
    sweep_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    sweep_after: datetime | None = _ts()
    # The bracket group an original frame belongs to, or whose merged photo this is. No foreign
    # key, as for `job_id`: a cycle with `brackets` would break SQLite migrations.
    bracket_id: uuid.UUID | None = Field(default=None, index=True)
    # What the photo's EXIF says about how it was shot (imaging/brackets.Exposure), for grouping.
    exposure: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Bracket(SQLModel, table=True):
    """2 to 9 photos of one shoot, shot at different exposures, that become one output."""

    __tablename__ = "brackets"
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    shoot_id: uuid.UUID = Field(foreign_key="shoots.id", index=True)
    created_at: datetime = _created_at()


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_status_run_after", "status", "run_after"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    asset_id: uuid.UUID = Field(foreign_key="assets.id", index=True)
    preset: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prompt_version_id: int | None = Field(default=None, foreign_key="prompt_versions.id")
    prompt_text: str = Field(default="")
    engine: str = Field(max_length=32)
    model: str = Field(default="", max_length=64)
    status: str = Field(default=JobStatus.QUEUED, max_length=16)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=4)
    run_after: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = _ts()
    # Random per claim: only the attempt holding it may finish, retry, fail, release or extend
    # the job; a stale attempt of the same worker process (lease expired, job claimed again) cannot.
    lease_token: str | None = Field(default=None, max_length=64)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=2000)
    # What the edit redrew, inside and outside the preset's region (engines/alteration.py).
    alteration: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # What the corrections asked for in `params` did ({"notes": [...], "regions_blurred": n}),
    # written by the worker; None until they ran, or when none was asked for.
    corrections: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A bracket job: the worker merges this group's frames into `asset_id` (its merged photo) first.
    bracket_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = _created_at()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class WorkerHeartbeat(SQLModel, table=True):
    """A worker process that is running, as it last said so: it beats every few seconds
    (WORKER_HEARTBEAT_SECONDS), so another worker may take over the jobs of one not seen for
    WORKER_DEAD_AFTER_SECONDS without waiting out their lease. `id` is the jobs' `lease_owner`."""

    __tablename__ = "workers"
    id: str = Field(primary_key=True, max_length=128)
    started_at: datetime = _created_at()
    last_seen: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class JobEvent(SQLModel, table=True):
    __tablename__ = "job_events"
    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="jobs.id", index=True)
    at: datetime = _created_at()
    type: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PromptVersion(SQLModel, table=True):
    __tablename__ = "prompt_versions"
    __table_args__ = (sa.UniqueConstraint("preset", "version", name="uq_prompt_versions_preset_version"),)
    id: int | None = Field(default=None, primary_key=True)
    preset: str = Field(max_length=32, index=True)
    version: int
    template: str
    params_schema: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    is_active: bool = Field(default=False)
    created_at: datetime = _created_at()


class StripeEvent(SQLModel, table=True):
    __tablename__ = "stripe_events"
    id: str = Field(primary_key=True, max_length=255)  # Stripe's event id
    type: str = Field(max_length=100)
    received_at: datetime = _created_at()
    processed_at: datetime | None = _ts()
    outcome: str = Field(default="", max_length=500)


class CheckoutSession(SQLModel, table=True):
    """A pack purchase: Stripe Checkout Session (or local checkout) to user and pack."""

    __tablename__ = "checkout_sessions"
    id: str = Field(primary_key=True, max_length=255)  # Stripe's cs_… id, or the local one
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    pack_id: str = Field(max_length=64)
    credits: int
    amount_total: int  # smallest currency unit
    currency: str = Field(max_length=8)
    payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    status: str = Field(default="open", max_length=32)  # open, paid, failed, expired
    status_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = _created_at()
    fulfilled_at: datetime | None = _ts()
    # Credits its refunds and its disputes hold back now (see services/stripe_events.py):
    # together never more than the pack granted, however Stripe's refunds and disputes overlap.
    refund_credits_taken: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    dispute_credits_taken: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Bumped by every refund/dispute settlement: one whose Stripe read began before another
    # settlement committed sees it moved, and reads Stripe again (Stripe is read outside locks).
    settlements: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class MagicLink(SQLModel, table=True):
    """A one-time sign-in link of the local auth provider; only the token's hash is stored."""

    __tablename__ = "magic_links"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    token_hash: str = Field(max_length=128, unique=True)
    redirect_to: str = Field(default="/", max_length=500)
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = _ts()


class IdempotencyKey(SQLModel, table=True):
    """The first answer to a job request carrying an `Idempotency-Key`: a retry gets it again."""

    __tablename__ = "idempotency_keys"
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)  # the request's endpoint and body, hashed
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _created_at()


class SignInRequest(SQLModel, table=True):
    """A browser asked for a sign-in link for `email`: the link signs in only where this browser's
    nonce cookie matches (against login CSRF). Only the nonce's hash is stored."""

    __tablename__ = "sign_in_requests"
    id: int | None = Field(default=None, primary_key=True)
    browser_hash: str = Field(max_length=128, index=True)
    email: str = Field(max_length=320)
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RateLimitBucket(SQLModel, table=True):
    """A rate-limit bucket (services/ratelimit.py): the requests it still admits and when that was
    last worked out, shared by every app replica through the DB; one row whatever the traffic."""

    __tablename__ = "rate_limit_buckets"
    bucket: str = Field(primary_key=True, max_length=400)
    tokens: float
    refilled_at: float  # seconds since the epoch: the same arithmetic on SQLite and PostgreSQL


class DownloadLink(SQLModel, table=True):
    """A short-lived browser download (one output, or a shoot's outputs as a ZIP), made after an
    ownership check; only the token's hash is stored."""

    __tablename__ = "download_links"
    token_hash: str = Field(primary_key=True, max_length=128)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    shoot_id: uuid.UUID | None = Field(default=None, foreign_key="shoots.id")
    asset_id: uuid.UUID | None = Field(default=None, foreign_key="assets.id")
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PendingDeletion(SQLModel, table=True):
    """A stored object whose row is gone and which storage has not yet confirmed deleting; the
    worker's sweep retries it until storage does (services/storage_cleanup.py)."""

    __tablename__ = "pending_deletions"
    id: int | None = Field(default=None, primary_key=True)
    storage_key: str = Field(max_length=512)
    created_at: datetime = _created_at()
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))


class ShootShare(SQLModel, table=True):
    """A shoot's public disclosure page (California AB 723): whoever holds the link sees the shoot's
    delivered photos, which of them were altered, and each one's unaltered original (no location).

    The token is kept as it is, not hashed: the link is meant to be published with the listing, and
    its owner must be able to copy it again later. Deleting the row (revoking) ends the page."""

    __tablename__ = "shoot_shares"
    shoot_id: uuid.UUID = Field(foreign_key="shoots.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    token: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = _created_at()
