"""A shoot's public disclosure page (California AB 723).

A listing whose photos were digitally altered must give the public access to the unaltered
originals. Sharing a shoot makes one public link (an unguessable token) to a page that lists the
shoot's delivered photos, says which were altered and how, and links each to its original,
served by the app itself without GPS or any other location. Revoking the share ends the link at
once: an unknown or revoked token is simply not found. Edits held for review or rejected are never
delivered, so they are never on the page.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.imaging import ImageRejected, encode_jpeg, fit_long_edge, load_normalised
from luster_app.imaging.budget import CheckLimits
from luster_app.imaging.raw import decoded_megapixels
from luster_app.imaging.privacy import blur_faces_and_plates
from luster_app.imaging.unlocated import ORIGINAL_QUALITY, unlocated_original
from luster_app.models import Asset, AssetKind, AssetStatus, Job, Shoot, ShootShare
from luster_app.services.errors import NotFound
from luster_app.services.gallery import decoding_in_turn, is_altered
from luster_app.services.shoots import get_shoot
from luster_app.storage import Storage

PAGE_PREFIX = "/disclosure"
PHOTO_LONG_EDGE = 1280  # the page's view of each delivered photo (the "web" size of exports)
NOT_SHARED = "This page does not exist, or its owner stopped sharing it."
BUSY = "Many photos are being shown right now; try again in a moment."


@dataclass(frozen=True)
class Share:
    """A shoot's public link: `path` is site-relative (`/disclosure/{token}`)."""

    shoot_id: uuid.UUID
    path: str
    created_at: datetime


@dataclass(frozen=True)
class PublicPhoto:
    """One delivered photo on the disclosure page."""

    number: int  # its place in the shoot, from 1
    original_id: uuid.UUID
    output_id: uuid.UUID
    altered: bool
    summary: str | None  # what the edit did, from its measure ("sky replaced; 0.2% of the photo redrawn, …")
    width: int  # the size the page shows it at (long edge at most PHOTO_LONG_EDGE)
    height: int


@dataclass(frozen=True)
class PublicShoot:
    name: str
    address: str | None
    photos: list[PublicPhoto]


def _share(row: ShootShare) -> Share:
    return Share(shoot_id=row.shoot_id, path=f"{PAGE_PREFIX}/{row.token}", created_at=row.created_at)


def get_share(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> Share | None:
    """The user's shoot's public link, or None while it is not shared (NotFound for another's shoot)."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    row = session.get(ShootShare, shoot_id)
    return _share(row) if row is not None and row.user_id == user_id else None


def share_shoot(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> Share:
    """Make the shoot's public link, or give the one it has (sharing twice is one link)."""
    existing = get_share(session=session, user_id=user_id, shoot_id=shoot_id)
    session.commit()  # end the read: a transaction that starts with its write waits its turn (SQLite)
    if existing is not None:
        return existing
    row = ShootShare(shoot_id=shoot_id, user_id=user_id, token=secrets.token_urlsafe(32))
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # shared at the same moment from another tab: that link is the link
        session.rollback()
        made = get_share(session=session, user_id=user_id, shoot_id=shoot_id)
        if made is None:
            raise
        return made
    return _share(row)


def revoke_share(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> None:
    """Stop sharing the shoot: its public link is not found from now on (NotFound for another's shoot)."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    session.commit()
    session.execute(delete(ShootShare).where(ShootShare.shoot_id == shoot_id, ShootShare.user_id == user_id))
    session.commit()


def _shared_shoot(session: Session, token: str) -> Shoot:
    row = session.execute(select(ShootShare).where(ShootShare.token == token)).scalars().first()
    shoot = session.get(Shoot, row.shoot_id) if row is not None else None
    if shoot is None or shoot.user_id != row.user_id:
        raise NotFound(NOT_SHARED)
    return shoot


def _delivered(
    session: Session, shoot: Shoot, *, original_id: uuid.UUID | None = None
) -> list[tuple[Asset, Asset, Job | None]]:
    """(original, its newest delivered output, that output's job) in shoot order; only that of
    `original_id` when given (one photo's request reads one photo's rows, not the whole page's)."""
    originals = select(Asset).where(
        Asset.shoot_id == shoot.id, Asset.user_id == shoot.user_id,
        # A bracket group's merged photo is the group's original.
        Asset.kind.in_((AssetKind.ORIGINAL, AssetKind.MERGED)), Asset.status == AssetStatus.READY,
    )
    outputs = select(Asset).where(
        Asset.shoot_id == shoot.id, Asset.user_id == shoot.user_id,
        Asset.kind == AssetKind.OUTPUT, Asset.status == AssetStatus.READY,
    )
    if original_id is not None:
        originals = originals.where(Asset.id == original_id)
        outputs = outputs.where(Asset.parent_asset_id == original_id)
    originals = list(session.execute(originals.order_by(Asset.created_at, Asset.id)).scalars())
    outputs = session.execute(outputs.order_by(Asset.version, Asset.created_at)).scalars()
    newest = {output.parent_asset_id: output for output in outputs}  # later rows are newer versions
    job_ids = [output.job_id for output in newest.values() if output.job_id is not None]
    jobs = {job.id: job for job in session.execute(select(Job).where(Job.id.in_(job_ids))).scalars()} if job_ids else {}
    return [
        (original, newest[original.id], jobs.get(newest[original.id].job_id))
        for original in originals
        if original.id in newest
    ]


def public_shoot(*, session: Session, token: str) -> PublicShoot:
    """What the disclosure page shows; NotFound for an unknown or revoked token."""
    shoot = _shared_shoot(session, token)
    photos = [
        PublicPhoto(number=number, original_id=original.id, output_id=output.id, altered=is_altered(job),
                    summary=(job.alteration or {}).get("summary") if job is not None else None,
                    **_shown_size(output))
        for number, (original, output, job) in enumerate(_delivered(session, shoot), start=1)
    ]
    return PublicShoot(name=shoot.name, address=shoot.address, photos=photos)


def _shown_size(output: Asset) -> dict[str, int]:
    width, height = output.width or PHOTO_LONG_EDGE, output.height or PHOTO_LONG_EDGE * 2 // 3
    scale = min(1.0, PHOTO_LONG_EDGE / max(width, height))
    return {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}


def _listed(session: Session, token: str, asset_id: uuid.UUID) -> tuple[Asset, Asset, Job | None]:
    """The (original, delivered output, its job) on the token's page whose original or output is `asset_id`."""
    shoot = _shared_shoot(session, token)
    asset = session.get(Asset, asset_id)
    if asset is None or asset.shoot_id != shoot.id:
        raise NotFound("This photo is not on the page.")
    original_id = asset.parent_asset_id if asset.kind == AssetKind.OUTPUT else asset.id
    for original, output, job in _delivered(session, shoot, original_id=original_id):
        if asset_id in (original.id, output.id):
            session.commit()  # no transaction held open while the photo is read and written
            return original, output, job
    raise NotFound("This photo is not on the page.")


def public_original(*, session: Session, storage: Storage, limits: CheckLimits, max_pixels: int, token: str,
                    original_id: uuid.UUID) -> tuple[bytes, str, str]:
    """The unaltered original of a photo on the page, with its pixels and without any location:
    (bytes, content type, file name). NotFound unless the token's page lists it."""
    original, _, job = _listed(session, token, original_id)
    if original.id != original_id:
        raise NotFound("This photo is not on the page.")
    with _bounded(limits, original, max_pixels):
        stored = storage.get_bytes(original.storage_key)
        if job is not None and (job.params or {}).get("auto_privacy"):
            # Its owner had faces and plates blurred in what they published: the public original keeps them blurred.
            private = blur_faces_and_plates(load_normalised(stored, max_pixels=max_pixels)).image
            data, content_type = encode_jpeg(private, quality=ORIGINAL_QUALITY), "image/jpeg"
        else:
            data, content_type = unlocated_original(stored, max_pixels=max_pixels)
    stem = original.filename.rsplit(".", 1)[0] or "photo"
    return data, content_type, f"{stem}-original.{'png' if content_type == 'image/png' else 'jpg'}"


def public_photo(
    *, session: Session, storage: Storage, limits: CheckLimits, max_pixels: int, token: str, output_id: uuid.UUID
) -> bytes:
    """A delivered photo on the page, at web size, as an sRGB JPEG without metadata."""
    _, output, _ = _listed(session, token, output_id)
    if output.id != output_id:
        raise NotFound("This photo is not on the page.")
    with _bounded(limits, output, max_pixels):
        image = load_normalised(storage.get_bytes(output.storage_key), max_pixels=max_pixels)
        return encode_jpeg(fit_long_edge(image, PHOTO_LONG_EDGE))


@contextmanager
def _bounded(limits: CheckLimits, asset: Asset, max_pixels: int) -> Iterator[None]:
    """Decode `asset` within the web process's limits (a slot, and its pixels' share; a camera RAW
    develops in several times its pixels): a public link, busy or hostile, meets 503, not an OOM."""
    megapixels = decoded_megapixels(asset.width, asset.height, asset.content_type, unknown=max_pixels / 1e6)
    try:
        with decoding_in_turn(limits, megapixels, busy=BUSY):
            yield
    except ImageRejected:
        raise NotFound("This photo cannot be shown.") from None
