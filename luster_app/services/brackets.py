"""Bracket groups: 2 to 9 photos of one shoot, shot at different exposures, that become one output.

A group owns a merged photo (an asset of kind `merged`), pending until the first job on the group
fuses the frames into it; jobs on the group run on that photo, so its outputs, the compare view
and the disclosure link treat it as the group's original. Ungrouping frees the frames; a merged
photo with enhanced versions stays in the shoot as a photo of its own.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.imaging.brackets import MAX_FRAMES, MIN_FRAMES, Exposure, suggest_groups
from luster_app.models import Asset, AssetKind, AssetStatus, Bracket, Job, JobStatus
from luster_app.services.deletion import remove_asset_rows
from luster_app.services.errors import Conflict, Invalid, NotFound
from luster_app.services.jobs import lock_credits, start_transaction
from luster_app.services.shoots import AssetView, asset_views, get_shoot
from luster_app.services.storage_cleanup import delete_pending
from luster_app.storage import Storage, keys

FRAME_COUNT = f"A bracket groups {MIN_FRAMES} to {MAX_FRAMES} photos."


@dataclass(frozen=True)
class BracketView:
    """A group as the shoot page shows it: its frames, and its merged photo once there is one."""

    id: uuid.UUID
    asset_ids: list[uuid.UUID]
    photo_id: uuid.UUID  # the merged photo's asset: what the group's jobs run on
    merged: AssetView | None  # once merged, with the group's enhanced versions as its outputs


@dataclass(frozen=True)
class ShootBrackets:
    groups: list[BracketView] = field(default_factory=list)
    # Ungrouped photos whose EXIF says they are one bracket, each list a group to accept.
    suggestions: list[list[uuid.UUID]] = field(default_factory=list)


def create_bracket(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> Bracket:
    """Group the shoot's ready photos `asset_ids` as one bracket. Invalid (422) for fewer than 2 or
    more than 9; NotFound (404) for a photo not in this shoot of this user; Conflict (409) for one
    still uploading or already in a group."""
    unique = list(dict.fromkeys(asset_ids))
    if not MIN_FRAMES <= len(unique) <= MAX_FRAMES:
        raise Invalid(FRAME_COUNT)
    start_transaction(session)
    try:
        lock_credits(session, user_id)  # a photo being deleted meanwhile is gone when read below, not grouped
        get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
        frames = {
            asset.id: asset
            for asset in session.execute(
                select(Asset).where(
                    Asset.id.in_(unique), Asset.user_id == user_id, Asset.shoot_id == shoot_id, Asset.kind == AssetKind.ORIGINAL
                )
            ).scalars()
        }
        if len(frames) != len(unique):
            raise NotFound("Photo not found in this shoot.")
        for asset in frames.values():
            if asset.status != AssetStatus.READY:
                raise Conflict(f"{asset.filename} has not finished uploading; group it once it has.")
            if asset.bracket_id is not None:
                raise Conflict(f"{asset.filename} is already in a bracket; ungroup that one first.")
        bracket = Bracket(user_id=user_id, shoot_id=shoot_id)
        session.add(bracket)
        session.flush()
        # Conditional on being ungrouped: of two groupings at once, one takes each photo.
        taken = session.execute(
            update(Asset).where(Asset.id.in_(unique), Asset.bracket_id.is_(None)).values(bracket_id=bracket.id)
        ).rowcount
        if taken != len(unique):
            raise Conflict("One of these photos was just grouped into another bracket.")
        first = frames[unique[0]]
        merged_id = uuid.uuid4()
        session.add(Asset(
            id=merged_id, shoot_id=shoot_id, user_id=user_id, kind=AssetKind.MERGED, status=AssetStatus.PENDING,
            storage_key=keys.original_key(user_id, shoot_id, merged_id, "JPEG"),
            filename=f"{posixpath.splitext(first.filename)[0]}_bracket.jpg", content_type="image/jpeg",
            width=first.width, height=first.height, bracket_id=bracket.id,
        ))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return bracket


def delete_bracket(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, bracket_id: uuid.UUID) -> None:
    """Ungroup: the frames are single photos again. A merged photo with enhanced versions stays
    as a photo of the shoot; one without goes. Conflict (409) while the group is being enhanced."""
    start_transaction(session)
    deletions: list[int] = []
    try:
        lock_credits(session, user_id)  # no job starts on the group while it goes
        bracket = session.execute(select(Bracket).where(Bracket.id == bracket_id, Bracket.user_id == user_id)).scalars().first()
        if bracket is None:
            raise NotFound("Bracket not found.")
        merged = _merged_photo(session, bracket.id)
        if merged is not None:
            busy = session.execute(
                select(func.count()).select_from(Job).where(Job.asset_id == merged.id, Job.status.in_(JobStatus.RESERVING))
            ).scalar_one()
            if busy:
                raise Conflict("This bracket is being enhanced; ungroup it once that finishes.")
            has_outputs = session.execute(
                select(func.count()).select_from(Asset).where(Asset.parent_asset_id == merged.id, Asset.kind == AssetKind.OUTPUT)
            ).scalar_one()
            if has_outputs:
                merged.kind, merged.bracket_id = AssetKind.ORIGINAL, None
                session.add(merged)
            else:
                deletions = remove_asset_rows(
                    session=session, settings=settings, user_id=user_id, asset_ids=[merged.id],
                    busy="This bracket is being enhanced; ungroup it once that finishes.",
                )
        session.execute(update(Asset).where(Asset.bracket_id == bracket.id).values(bracket_id=None))
        session.execute(delete(Bracket).where(Bracket.id == bracket.id))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    delete_pending(session=session, storage=storage, ids=deletions)


def _merged_photo(session: Session, bracket_id: uuid.UUID) -> Asset | None:
    return session.execute(
        select(Asset).where(Asset.bracket_id == bracket_id, Asset.kind == AssetKind.MERGED)
    ).scalars().first()


def bracket_frames(*, session: Session, bracket_id: uuid.UUID) -> list[Asset]:
    """The group's ready frames, in upload order (the worker's read)."""
    frames = list(session.execute(
        select(Asset).where(Asset.bracket_id == bracket_id, Asset.kind == AssetKind.ORIGINAL, Asset.status == AssetStatus.READY)
        .order_by(Asset.created_at, Asset.id)
    ).scalars())
    session.commit()
    return frames


def record_merged(
    *, session: Session, merged_id: uuid.UUID, storage_key: str, size: int, width: int, height: int, thumb_key: str,
    thumb_size: int, thumb_width: int, thumb_height: int,
) -> bool:
    """The merged photo is stored at `storage_key`: ready, with its thumbnail. Conditional on `pending`,
    so of two jobs merging at once one records it; False for the other."""
    start_transaction(session)
    try:
        marked = session.execute(
            update(Asset).where(Asset.id == merged_id, Asset.status == AssetStatus.PENDING)
            .values(status=AssetStatus.READY, storage_key=storage_key, bytes=size, width=width, height=height)
        ).rowcount
        if marked:
            merged = session.get(Asset, merged_id)
            session.add(Asset(
                shoot_id=merged.shoot_id, user_id=merged.user_id, kind=AssetKind.THUMB, storage_key=thumb_key,
                filename=f"{posixpath.splitext(merged.filename)[0]}_thumb.jpg", content_type="image/jpeg",
                bytes=thumb_size, width=thumb_width, height=thumb_height, status=AssetStatus.READY, parent_asset_id=merged_id,
            ))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return bool(marked)


def list_brackets(
    *, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, shoot_id: uuid.UUID
) -> ShootBrackets:
    """The shoot's groups with their merged photos, and the groups its ungrouped photos' EXIF suggests."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    assets = session.execute(
        select(Asset).where(Asset.shoot_id == shoot_id, Asset.user_id == user_id).order_by(Asset.created_at, Asset.id)
    ).scalars().all()
    brackets = session.execute(
        select(Bracket.id).where(Bracket.shoot_id == shoot_id, Bracket.user_id == user_id).order_by(Bracket.created_at, Bracket.id)
    ).scalars().all()
    merged = {view.id: view for view in asset_views(storage=storage, settings=settings, assets=assets, kind=AssetKind.MERGED)}
    groups = []
    for bracket_id in brackets:
        frames = [a.id for a in assets if a.bracket_id == bracket_id and a.kind == AssetKind.ORIGINAL]
        photo = next(a for a in assets if a.bracket_id == bracket_id and a.kind == AssetKind.MERGED)
        view = merged.get(photo.id) if photo.status == AssetStatus.READY else None
        groups.append(BracketView(id=bracket_id, asset_ids=frames, photo_id=photo.id, merged=view))
    singles = [
        (asset.id, Exposure.from_json(asset.exposure))
        for asset in assets
        if asset.kind == AssetKind.ORIGINAL and asset.status == AssetStatus.READY and asset.bracket_id is None
    ]
    return ShootBrackets(groups=groups, suggestions=suggest_groups(singles))
