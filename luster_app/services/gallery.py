"""What the shoot pages show beyond the photos themselves: where each photo's jobs stand, and shoot options."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.imaging import encode_jpeg, load_normalised
from luster_app.imaging.budget import BudgetExhausted, CheckLimits
from luster_app.imaging.raw import decoded_megapixels
from luster_app.models import Asset, AssetKind, AssetStatus, Job, JobStatus, Shoot
from luster_app.services.errors import Busy, NotFound
from luster_app.services.shoots import get_shoot
from luster_app.services.uploads import BUSY_RETRY_SECONDS
from luster_app.storage import Storage
from luster_app.storage.keys import asset_prefix

# Presets that change what the scene looks like (not just exposure and colour): California's
# AB 723 requires such listing photos to be disclosed as digitally altered.
SCENE_ALTERING_PRESETS = frozenset({"sky", "dusk", "lawn", "declutter"})
# Under this share of the photo redrawn, an edit changed tone and colour only.
REDRAWN_AT_ALL = 0.0005
# What every browser shows in an <img>; HEIC is not among them outside Safari.
BROWSER_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
BUSY = "Many photos are being prepared right now; try again in a moment."


@dataclass(frozen=True)
class JobBrief:
    """A job as the shoot page lists it."""

    id: uuid.UUID
    asset_id: uuid.UUID
    preset: str
    status: str
    error_message: str | None
    created_at: datetime


@dataclass(frozen=True)
class ShootProgress:
    """How many of a shoot's photos have their latest job in each state."""

    in_progress: int = 0
    succeeded: int = 0
    failed: int = 0
    to_review: int = 0  # edits held for their owner's review (honest edits)

    @property
    def summary(self) -> str:
        parts = []
        if self.in_progress:
            parts.append(f"{self.in_progress} in progress")
        if self.succeeded:
            parts.append(f"{self.succeeded} enhanced")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.to_review:
            parts.append(f"{self.to_review} to review")
        return " · ".join(parts) or "Nothing enhanced yet"


def jobs_of_shoot(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> list[JobBrief]:
    """Every job on the shoot's photos, oldest first (the last one per photo is its current state)."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    rows = session.execute(
        select(Job)
        .join(Asset, Asset.id == Job.asset_id)
        .where(Job.user_id == user_id, Asset.user_id == user_id, Asset.shoot_id == shoot_id)
        .order_by(Job.created_at, Job.id)
    ).scalars()
    return [
        JobBrief(id=job.id, asset_id=job.asset_id, preset=job.preset, status=job.status,
                 error_message=job.error_message, created_at=job.created_at)
        for job in rows
    ]


def progress_by_shoot(*, session: Session, user_id: uuid.UUID) -> dict[uuid.UUID, ShootProgress]:
    """For each of the user's shoots with jobs, how its photos' latest jobs stand."""
    rows = session.execute(
        select(Asset.shoot_id, Job.asset_id, Job.status)
        .join(Asset, Asset.id == Job.asset_id)
        .where(Job.user_id == user_id, Asset.user_id == user_id)
        .order_by(Job.created_at, Job.id)
    ).all()
    latest: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    for shoot_id, asset_id, status in rows:
        latest[asset_id] = (shoot_id, status)  # later rows are newer jobs
    counts: dict[uuid.UUID, Counter[str]] = {}
    for shoot_id, status in latest.values():
        counts.setdefault(shoot_id, Counter())[status] += 1
    return {
        shoot_id: ShootProgress(
            in_progress=sum(c[s] for s in JobStatus.ACTIVE),
            succeeded=c[JobStatus.SUCCEEDED],
            failed=c[JobStatus.FAILED],
            to_review=c[JobStatus.NEEDS_REVIEW],
        )
        for shoot_id, c in counts.items()
    }


def set_disclose_alterations(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID, disclose: bool) -> None:
    """Turn the shoot's "Digitally altered" caption on scene-altering downloads on or off."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    session.commit()  # a fresh transaction that starts with its write (SQLite cannot upgrade a read)
    session.execute(
        update(Shoot).where(Shoot.id == shoot_id, Shoot.user_id == user_id).values(disclose_alterations=disclose)
    )
    session.commit()


@contextmanager
def decoding_in_turn(limits: CheckLimits, megapixels: float, *, busy: str = BUSY, patient: bool = False) -> Iterator[None]:
    """One decode in a request thread within the web process's bounds (`CheckLimits.decoding`);
    when they are not free in time, Busy with `busy` (503 with Retry-After)."""
    try:
        with limits.decoding(megapixels, patient=patient):
            yield
    except BudgetExhausted:
        raise Busy(busy, retry_after=BUSY_RETRY_SECONDS) from None


def display_url(
    *, session: Session, storage: Storage, settings: Settings, limits: CheckLimits, user_id: uuid.UUID, asset_id: uuid.UUID
) -> str:
    """A signed URL of the user's original photo in a form any browser shows at full size: the
    original itself, or (for HEIC and RAW) an upright, metadata-free JPEG copy made once and kept
    beside it, decoded within the web process's bounds (not free in time: Busy, 503)."""
    original = session.execute(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id,
                            Asset.kind.in_((AssetKind.ORIGINAL, AssetKind.MERGED)), Asset.status == AssetStatus.READY)
    ).scalars().first()
    if original is None:
        raise NotFound("photo not found")
    session.commit()  # no transaction held open while decoding
    ttl = settings.signed_url_ttl_seconds
    if original.content_type in BROWSER_IMAGE_TYPES:
        return storage.signed_get_url(original.storage_key, expires_in=ttl)
    key = f"{asset_prefix(original.user_id, original.shoot_id, original.id)}/display.jpg"
    if storage.head(key) is None:
        max_pixels = settings.max_image_pixels
        megapixels = decoded_megapixels(original.width, original.height, original.content_type, unknown=max_pixels / 1e6)
        with decoding_in_turn(limits, megapixels):
            copy = encode_jpeg(load_normalised(storage.get_bytes(original.storage_key), max_pixels=max_pixels))
        storage.put_bytes(key, copy, content_type="image/jpeg")
    return storage.signed_get_url(key, expires_in=ttl)


@dataclass(frozen=True)
class BatchProgress:
    """The shoot's current batch: the jobs since the oldest one still queued or processing."""

    done: int
    total: int
    eta_seconds: float | None  # None: nothing to estimate from yet

    @property
    def summary(self) -> str:
        """"3 of 10 done · about 4 min left" (or "… · estimating time left")."""
        if not self.total:
            return ""
        head = f"{self.done} of {self.total} done"
        if self.eta_seconds is None:
            return f"{head} · estimating time left"
        if self.eta_seconds < 60:
            return f"{head} · under a minute left"
        return f"{head} · about {round(self.eta_seconds / 60)} min left"


RECENT_JOBS = 20  # finished jobs of the user's that time an estimate when the batch has none yet


def batch_progress(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> BatchProgress:
    """Done/total of the shoot's batch in flight and the time left, from how fast this batch has gone
    so far (two or more done), else from the user's recent jobs (the median time one took)."""
    jobs = jobs_of_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    active = [job for job in jobs if job.status in JobStatus.ACTIVE]
    if not active:
        return BatchProgress(done=0, total=0, eta_seconds=None)
    start = min(job.created_at for job in active)
    batch = [job for job in jobs if job.created_at >= start]
    remaining = len(active)
    done = len(batch) - remaining
    finished = session.execute(
        select(Job.finished_at).where(Job.id.in_([job.id for job in batch]), Job.finished_at.is_not(None))
    ).scalars().all()
    if len(finished) >= 2:
        per_photo = (max(finished) - start).total_seconds() / len(finished)
        return BatchProgress(done=done, total=len(batch), eta_seconds=max(0.0, per_photo * remaining))
    recent = session.execute(
        select(Job.started_at, Job.finished_at)
        .where(Job.user_id == user_id, Job.status == JobStatus.SUCCEEDED, Job.started_at.is_not(None),
               Job.finished_at.is_not(None))
        .order_by(Job.finished_at.desc()).limit(RECENT_JOBS)
    ).all()
    if not recent:
        return BatchProgress(done=done, total=len(batch), eta_seconds=None)
    took = sorted((finished_at - started_at).total_seconds() for started_at, finished_at in recent)
    return BatchProgress(done=done, total=len(batch), eta_seconds=took[len(took) // 2] * remaining)


def is_altered(job: Job | None) -> bool:
    """Whether an edit changed the scene (a new sky, a greener lawn, objects removed, anything
    redrawn), not just its light and colour."""
    if job is None:
        return False
    alteration = job.alteration or {}
    redrawn = float(alteration.get("redrawn_inside") or 0) + float(alteration.get("redrawn_outside") or 0)
    return job.preset in SCENE_ALTERING_PRESETS or redrawn >= REDRAWN_AT_ALL
