"""Shoots (one listing each) and their photos, with short-lived signed URLs issued after an ownership check."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.models import Asset, AssetKind, AssetStatus, Shoot
from luster_app.services.errors import Invalid, NotFound
from luster_app.storage import Storage

NAME_MAX = 200
ADDRESS_MAX = 500


@dataclass(frozen=True)
class ShootSummary:
    id: uuid.UUID
    name: str
    address: str | None
    created_at: datetime
    photo_count: int
    cover_thumb_url: str | None


@dataclass(frozen=True)
class OutputView:
    id: uuid.UUID
    job_id: uuid.UUID | None
    version: int | None
    filename: str
    bytes: int
    width: int | None
    height: int | None
    created_at: datetime
    url: str
    thumb_url: str | None


@dataclass(frozen=True)
class AssetView:
    """An original photo as the shoot page shows it; URLs only for objects that exist."""

    id: uuid.UUID
    shoot_id: uuid.UUID
    filename: str
    content_type: str
    status: str
    bytes: int
    width: int | None
    height: int | None
    reject_reason: str | None
    created_at: datetime
    original_url: str | None
    thumb_url: str | None
    outputs: list[OutputView] = field(default_factory=list)
    bracket_id: uuid.UUID | None = None  # the bracket group this photo is a frame of


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise Invalid("Give the shoot a name.")
    if len(name) > NAME_MAX:
        raise Invalid(f"A shoot name can be at most {NAME_MAX} characters.")
    return name


def _clean_address(address: str | None) -> str | None:
    address = (address or "").strip() or None
    if address and len(address) > ADDRESS_MAX:
        raise Invalid(f"An address can be at most {ADDRESS_MAX} characters.")
    return address


def create_shoot(*, session: Session, user_id: uuid.UUID, name: str, address: str | None = None) -> Shoot:
    """A new, empty shoot for this user."""
    shoot = Shoot(user_id=user_id, name=_clean_name(name), address=_clean_address(address))
    session.add(shoot)
    session.commit()
    return shoot


def update_shoot(
    *, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID, name: str | None = None, address: str | None = None,
    change_address: bool = False,
) -> Shoot:
    """Rename the user's shoot and/or change its address (`change_address`: set it to `address`,
    an empty one clearing it); NotFound for anyone else's."""
    shoot = get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    if name is not None:
        shoot.name = _clean_name(name)
    if change_address:
        shoot.address = _clean_address(address)
    session.add(shoot)
    session.commit()
    session.refresh(shoot)
    return shoot


def get_shoot(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID) -> Shoot:
    """The user's shoot, or NotFound (also for another user's shoot)."""
    shoot = session.execute(select(Shoot).where(Shoot.id == shoot_id, Shoot.user_id == user_id)).scalars().first()
    if shoot is None:
        raise NotFound("shoot not found")
    return shoot


def list_shoots(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID) -> list[ShootSummary]:
    """The user's shoots, newest first, each with its number of ready photos and a cover thumbnail."""
    shoots = session.execute(select(Shoot).where(Shoot.user_id == user_id).order_by(Shoot.created_at.desc())).scalars()
    ready_originals = (Asset.user_id == user_id, Asset.kind == AssetKind.ORIGINAL, Asset.status == AssetStatus.READY)
    counts = dict(
        session.execute(select(Asset.shoot_id, func.count()).where(*ready_originals).group_by(Asset.shoot_id)).all()
    )
    thumb = aliased(Asset)
    cover_rows = session.execute(
        select(Asset.shoot_id, thumb.storage_key)
        .join(thumb, (thumb.parent_asset_id == Asset.id) & (thumb.kind == AssetKind.THUMB))
        .where(*ready_originals)
        .order_by(Asset.created_at.desc())
    ).all()
    # The first photo uploaded is the cover: later rows overwrite earlier (newer) ones.
    cover_keys = {shoot_id: key for shoot_id, key in cover_rows}
    return [
        ShootSummary(
            id=shoot.id,
            name=shoot.name,
            address=shoot.address,
            created_at=shoot.created_at,
            photo_count=counts.get(shoot.id, 0),
            cover_thumb_url=(
                storage.signed_get_url(cover_keys[shoot.id], expires_in=settings.signed_url_ttl_seconds)
                if shoot.id in cover_keys
                else None
            ),
        )
        for shoot in shoots
    ]


def shoot_summary(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, shoot_id: uuid.UUID) -> ShootSummary:
    """One of the user's shoots as `list_shoots` shows it; NotFound for anyone else's."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    return next(s for s in list_shoots(session=session, storage=storage, settings=settings, user_id=user_id) if s.id == shoot_id)


def list_assets_with_urls(
    *, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, shoot_id: uuid.UUID
) -> list[AssetView]:
    """The shoot's original photos in upload order, with signed URLs for original, thumbnail and outputs."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    assets = session.execute(
        select(Asset).where(Asset.shoot_id == shoot_id, Asset.user_id == user_id).order_by(Asset.created_at, Asset.id)
    ).scalars().all()
    return asset_views(storage=storage, settings=settings, assets=assets)


def get_asset_with_urls(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, asset_id: uuid.UUID) -> AssetView:
    """One original photo of the user's (or a bracket group's merged photo), with its signed URLs;
    NotFound for anyone else's."""
    original = session.execute(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id,
                            Asset.kind.in_((AssetKind.ORIGINAL, AssetKind.MERGED)))
    ).scalars().first()
    if original is None:
        raise NotFound("photo not found")
    family = [original]
    generation = [original.id]
    while generation:  # outputs of the original, then thumbnails of those
        found = session.execute(
            select(Asset).where(Asset.user_id == user_id, Asset.parent_asset_id.in_(generation))
        ).scalars().all()
        family.extend(found)
        generation = [asset.id for asset in found]
    return asset_views(storage=storage, settings=settings, assets=family, kind=original.kind)[0]


def asset_views(
    *, storage: Storage, settings: Settings, assets: list[Asset], kind: str = AssetKind.ORIGINAL
) -> list[AssetView]:
    """Views of the originals (or bracket merged photos) among `assets`, with their ready
    thumbnails and outputs from the same list."""
    children: dict[uuid.UUID, list[Asset]] = defaultdict(list)
    for asset in assets:
        if asset.parent_asset_id is not None and asset.status == AssetStatus.READY:
            children[asset.parent_asset_id].append(asset)

    def url(asset: Asset, download_name: str | None = None) -> str:
        return storage.signed_get_url(
            asset.storage_key, expires_in=settings.signed_url_ttl_seconds, download_name=download_name
        )

    def thumb_url_of(asset_id: uuid.UUID) -> str | None:
        thumb = next((a for a in children[asset_id] if a.kind == AssetKind.THUMB), None)
        return url(thumb) if thumb else None

    def outputs_of(asset_id: uuid.UUID) -> list[OutputView]:
        return [
            OutputView(
                id=output.id,
                job_id=output.job_id,
                version=output.version,
                filename=output.filename,
                bytes=output.bytes,
                width=output.width,
                height=output.height,
                created_at=output.created_at,
                url=url(output, output.filename),
                thumb_url=thumb_url_of(output.id),
            )
            for output in children[asset_id]
            # An output held for review (or rejected) is not delivered: only ready ones are listed.
            if output.kind == AssetKind.OUTPUT and output.status == AssetStatus.READY
        ]

    return [
        AssetView(
            id=asset.id,
            shoot_id=asset.shoot_id,
            filename=asset.filename,
            content_type=asset.content_type,
            status=asset.status,
            bytes=asset.bytes,
            width=asset.width,
            height=asset.height,
            reject_reason=asset.reject_reason,
            created_at=asset.created_at,
            original_url=url(asset, asset.filename) if asset.status == AssetStatus.READY else None,
            thumb_url=thumb_url_of(asset.id),
            outputs=outputs_of(asset.id),
            bracket_id=asset.bracket_id,
        )
        for asset in assets
        if asset.kind == kind
    ]
