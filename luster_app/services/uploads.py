"""Direct uploads: presign a pending asset, then verify what actually arrived in storage.

The bytes go from the browser straight to storage. Nothing the client declares is trusted:
at completion the stored object's size comes from a HEAD, its type from its first bytes, and
its dimensions from a decode with an allow-list and decompression-bomb limits. The checked bytes
are then copied to a key of the server's choosing, which the photo uses from then on: an upload
link stays valid for its whole lifetime (S3 cannot revoke one), so the object it writes may be
replaced after the check, but nothing reads that object any more.
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from sqlalchemy import and_, or_, select, true, update
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.imaging import ImageRejected, encode_jpeg, make_thumbnail, open_image, oriented_size, sniff_format
from luster_app.imaging.decode import NOT_A_PHOTO
from luster_app.imaging.encode import THUMB_QUALITY
from luster_app.imaging.raw import CHECK_SHARE, RAW_CONTENT_TYPES, RAW_FORMATS, inspect_raw, opened_raw, raw_format
from luster_app.imaging.raw import megapixels as raw_megapixels
from luster_app.metrics import UPLOADS_COMPLETED, UPLOADS_REJECTED, after_commit
from luster_app.models import Asset, AssetKind, AssetStatus, utcnow
from luster_app.imaging.brackets import read_exposure
from luster_app.imaging.budget import BudgetExhausted, CheckLimits
from luster_app.services.errors import Busy, Conflict, Invalid, NotFound, TooLarge, UnsupportedMedia
from luster_app.services.shoots import get_shoot
from luster_app.services.storage_cleanup import record_deletions
from luster_app.storage import Storage, UploadInstructions
from luster_app.storage.base import read_at_most
from luster_app.storage.keys import checked_original_key, original_key, thumb_key

log = logging.getLogger(__name__)

# Declared types we accept, by the image format they promise (the bytes decide at completion).
DECLARED_FORMATS = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    **{content_type: name for name, content_type in RAW_CONTENT_TYPES.items()},
    "image/dng": "DNG",
    "image/x-panasonic-raw": "RW2",
}
RAW_EXTENSIONS = {f".{name.lower()}": name for name in RAW_FORMATS}
# Some browsers report HEIC files with an empty type; then the extension says what was picked.
EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".heic": "HEIF", ".heif": "HEIF", **RAW_EXTENSIONS,
}
FORMAT_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic", **RAW_CONTENT_TYPES}
CONTENT_TYPE_FORMATS = {content_type: name for name, content_type in FORMAT_CONTENT_TYPES.items()}
UNTYPED = {"", "application/octet-stream"}
# Types systems give camera RAW files without naming the camera: the extension says which was picked.
GENERIC_RAW_TYPES = {"image/tiff", "image/x-raw", "image/x-dcraw"}
ACCEPTED = "a JPEG, HEIC, PNG or WebP photo, nor a camera RAW file (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2)"
SNIFF_BYTES = 64
FILENAME_MAX = 255
UNREADABLE = "The file is damaged or not a readable image."
NOT_ARRIVED = "The upload did not reach storage; try again."
SWEEP_BACKOFF_MAX_SECONDS = 24 * 3600
BUSY = "We are checking many photos right now; this one will be checked in a moment."
BUSY_RETRY_SECONDS = 5
DRAFT_MEGAPIXELS = 1.0


class UploadRejected(Invalid):
    """The stored object was not an acceptable photo; it is deleted and the asset is `rejected`."""

    def __init__(self, reason: str, *, asset_id: uuid.UUID) -> None:
        super().__init__(reason)
        self.asset_id = asset_id


@dataclass(frozen=True)
class PresignedUpload:
    asset_id: uuid.UUID
    upload: UploadInstructions
    expires_at: datetime


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def clean_filename(filename: str) -> str:
    """The picked file's own name, without any folder, control characters or excess length."""
    name = posixpath.basename(filename.replace("\\", "/"))
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip() or "photo"
    if len(name) > FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        name = stem[: FILENAME_MAX - len(extension) - 1] + dot + extension if dot and len(extension) < 10 else name[:FILENAME_MAX]
    return name


def declared_format(filename: str, content_type: str) -> str | None:
    """The image format the client says it is sending, or None if it is not one we accept."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    extension = posixpath.splitext(filename.lower())[1]
    if media_type in UNTYPED:
        return EXTENSION_FORMATS.get(extension)
    if media_type in GENERIC_RAW_TYPES:
        return RAW_EXTENSIONS.get(extension)
    return DECLARED_FORMATS.get(media_type)


def size_limit(settings: Settings, image_format: str) -> int:
    """The most bytes a file of this format may have: camera RAW files have their own, larger limit."""
    return settings.raw_max_bytes if image_format in RAW_FORMATS else settings.upload_max_bytes


def presign_upload(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    user_id: uuid.UUID,
    shoot_id: uuid.UUID,
    filename: str,
    content_type: str,
    size: int,
    allow_duplicate: bool = False,
) -> PresignedUpload:
    """A pending asset in the user's shoot and the instructions to upload its bytes straight to storage."""
    shoot = get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    filename = clean_filename(filename)
    if size <= 0:
        raise Invalid(f"{filename} is empty.")
    image_format = declared_format(filename, content_type)
    limit = size_limit(settings, image_format or "")
    if size > limit:
        raise TooLarge(f"{filename} is {megabytes(size)}; the limit is {megabytes(limit)}.")
    if image_format is None:
        raise UnsupportedMedia(f"{filename} is not {ACCEPTED}.")
    if not allow_duplicate and _has_duplicate(
        session=session,
        user_id=user_id,
        shoot_id=shoot.id,
        filename=filename,
        size=size,
        upload_ttl_seconds=settings.signed_url_ttl_seconds,
    ):
        raise Conflict(f"{filename} ({megabytes(size)}) is already in this shoot.")

    # End the reads before writing: SQLite cannot turn a read snapshot into a write once another
    # upload has written meanwhile ("database is locked" at once); a fresh write waits its turn.
    session.commit()
    asset_id = uuid.uuid4()
    key = original_key(user_id, shoot.id, asset_id, image_format)
    signed_type = FORMAT_CONTENT_TYPES[image_format]
    ttl = settings.signed_url_ttl_seconds
    upload = storage.presign_upload(
        key, content_type=signed_type, size=size, max_bytes=limit, expires_in=ttl
    )
    session.add(
        Asset(
            id=asset_id,
            shoot_id=shoot.id,
            user_id=user_id,
            kind=AssetKind.ORIGINAL,
            storage_key=key,
            filename=filename,
            content_type=signed_type,
            bytes=size,
            status=AssetStatus.PENDING,
        )
    )
    session.commit()
    return PresignedUpload(asset_id=asset_id, upload=upload, expires_at=utcnow() + timedelta(seconds=ttl))


def _has_duplicate(
    *,
    session: Session,
    user_id: uuid.UUID,
    shoot_id: uuid.UUID,
    filename: str,
    size: int,
    upload_ttl_seconds: int,
    chosen_after: datetime | None = None,
) -> bool:
    """Same name and size already in the shoot, ready or still uploading: the same file chosen twice.

    A pending upload whose link has expired no longer counts, so an abandoned upload can be retried.
    `chosen_after` counts only copies signed later than that.
    """
    still_uploading = and_(
        Asset.status == AssetStatus.PENDING, Asset.created_at >= utcnow() - timedelta(seconds=upload_ttl_seconds)
    )
    return (
        session.execute(
            select(Asset.id).where(
                Asset.user_id == user_id,
                Asset.shoot_id == shoot_id,
                Asset.kind == AssetKind.ORIGINAL,
                Asset.filename == filename,
                Asset.bytes == size,
                or_(Asset.status == AssetStatus.READY, still_uploading),
                true() if chosen_after is None else Asset.created_at > chosen_after,
            )
        ).first()
        is not None
    )


def complete_upload(
    *, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, asset_id: uuid.UUID,
    limits: CheckLimits | None = None,
) -> Asset:
    """Verify the uploaded object, keep a copy of exactly the bytes checked, record its upright size
    and write its thumbnail; UploadRejected if bad. With `limits` (the web process's), the read and
    decode wait for a check slot and their pixels' share; Busy (503) if they do not come free in time.
    """
    asset = session.execute(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id, Asset.kind == AssetKind.ORIGINAL)
    ).scalars().first()
    if asset is None:
        raise NotFound("photo not found")
    if asset.status == AssetStatus.READY:
        return asset
    if asset.status == AssetStatus.REJECTED:
        raise UploadRejected(asset.reject_reason or "This photo was rejected.", asset_id=asset.id)
    session.commit()  # hold no transaction open during the storage round trips and the decode

    uploaded = asset.storage_key  # before the update below points the photo at its checked copy
    try:
        with limits.slot() if limits else nullcontext():
            # The type signed at presign (RAW or not) sets how much is read; the bytes then decide.
            limit = size_limit(settings, CONTENT_TYPE_FORMATS.get(asset.content_type, ""))
            data, image_format = _read_object(storage=storage, settings=settings, key=uploaded, limit=limit)
            width, height, thumbnail, thumb_width, thumb_height = _decode(
                data, image_format, settings=settings, limits=limits
            )
    except ImageRejected as exc:
        _reject(session=session, storage=storage, asset=asset, reason=exc.reason, code=exc.code)
        if asset.status == AssetStatus.READY:  # a concurrent completion won (and dropped the upload it copied)
            return asset
        raise UploadRejected(exc.reason, asset_id=asset.id) from None
    except BudgetExhausted:
        log.info("upload check of %s deferred: this process is checking as many photos as it may", asset.id)
        raise Busy(BUSY, retry_after=BUSY_RETRY_SECONDS) from None

    check = uuid.uuid4().hex[:16]
    checked = checked_original_key(asset.user_id, asset.shoot_id, asset.id, image_format, check)
    key = thumb_key(asset.user_id, asset.shoot_id, asset.id, check)
    try:
        storage.put_bytes(checked, data, content_type=FORMAT_CONTENT_TYPES[image_format])
        storage.put_bytes(key, thumbnail, content_type="image/jpeg")
    except BaseException:
        _delete_quietly(storage, checked, key)
        raise
    # Conditional on `pending`: of two concurrent completions, one records its copy and thumbnail.
    marked = session.execute(
        update(Asset)
        .where(Asset.id == asset.id, Asset.status == AssetStatus.PENDING)
        .values(
            status=AssetStatus.READY,
            storage_key=checked,
            width=width,
            height=height,
            bytes=len(data),
            content_type=FORMAT_CONTENT_TYPES[image_format],
            exposure=exposure.to_json() if (exposure := read_exposure(data)) else None,
        )
    )
    if marked.rowcount == 1:
        after_commit(session, UPLOADS_COMPLETED.inc)
        # An S3 upload link stays usable until it expires: whatever it writes after now is read by
        # nothing, so it is dropped once the link is dead.
        record_deletions(session, [uploaded], due_at=utcnow() + timedelta(seconds=settings.signed_url_ttl_seconds))
        session.add(
            Asset(
                shoot_id=asset.shoot_id,
                user_id=asset.user_id,
                kind=AssetKind.THUMB,
                storage_key=key,
                filename=f"{posixpath.splitext(asset.filename)[0]}_thumb.jpg",
                content_type="image/jpeg",
                bytes=len(thumbnail),
                width=thumb_width,
                height=thumb_height,
                status=AssetStatus.READY,
                parent_asset_id=asset.id,
            )
        )
    session.commit()
    session.refresh(asset)
    # The winner drops the uploaded object (read from nowhere now); a loser drops its own copies.
    _delete_quietly(storage, *((uploaded,) if marked.rowcount == 1 else (checked, key)))
    if asset.status != AssetStatus.READY:  # a concurrent completion rejected it
        raise UploadRejected(asset.reject_reason or "This photo was rejected.", asset_id=asset.id)
    return asset


async def complete_upload_in_turn(
    *, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID, asset_id: uuid.UUID, limits: CheckLimits,
) -> Asset:
    """`complete_upload` in a request thread once this photo's turn among the process's checks has
    come: it waits in the event loop, so photos queued behind others hold no thread and the
    process's other requests are still served. Busy (503) if the turn does not come in time."""
    def check() -> Asset:
        asset = complete_upload(
            session=session, storage=storage, settings=settings, user_id=user_id, asset_id=asset_id, limits=limits,
        )
        session.commit()  # the read after its commit ends: no connection waits for the caller's next thread
        return asset

    try:
        async with limits.turn():
            return await anyio.to_thread.run_sync(check)
    except BudgetExhausted:
        log.info("upload check of %s deferred: its turn did not come within %ss", asset_id, limits.queue_wait)
        raise Busy(BUSY, retry_after=BUSY_RETRY_SECONDS) from None


def _delete_quietly(storage: Storage, *keys: str) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001  (an object nothing reads costs storage, not correctness)
            log.warning("could not delete an unused upload object", exc_info=True)


def abandoned_uploads(*, session: Session, settings: Settings, limit: int = 20) -> list[uuid.UUID]:
    """Photos still `pending` `upload_abandon_seconds` after they were signed, oldest first: the
    browser that uploaded them went away (a phone's tab closed, a laptop slept) before it said
    the upload was done, and their upload links have expired. A photo whose settling failed
    waits out its backoff (`defer_abandoned_upload`), so failing ones never crowd out the rest."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.upload_abandon_seconds)
    stale = session.execute(
        select(Asset.id)
        .where(
            Asset.kind == AssetKind.ORIGINAL, Asset.status == AssetStatus.PENDING, Asset.created_at < cutoff,
            or_(Asset.sweep_after.is_(None), Asset.sweep_after <= now),
        )
        .order_by(Asset.created_at)
        .limit(limit)
    ).scalars().all()
    session.commit()  # each photo's write starts a fresh transaction (SQLite cannot upgrade a read)
    return list(stale)


def defer_abandoned_upload(*, session: Session, settings: Settings, asset_id: uuid.UUID) -> None:
    """Settling this abandoned upload failed (storage or decoder trouble): try it again after a
    backoff that doubles with each failure, from one sweep interval up to a day."""
    pending = (Asset.id == asset_id, Asset.status == AssetStatus.PENDING)
    failures = session.execute(select(Asset.sweep_failures).where(*pending)).scalar()
    session.commit()  # the write below starts a fresh transaction (SQLite cannot upgrade a read)
    if failures is None:
        return
    wait = min(SWEEP_BACKOFF_MAX_SECONDS, settings.worker_upload_sweep_seconds * 2 ** min(failures, 20))
    session.execute(
        update(Asset)
        .where(*pending, Asset.sweep_failures == failures)  # a concurrent sweeper's failure counts once
        .values(sweep_failures=failures + 1, sweep_after=utcnow() + timedelta(seconds=wait))
    )
    session.commit()


def settle_abandoned_upload(*, session: Session, storage: Storage, settings: Settings, asset_id: uuid.UUID) -> AssetStatus | None:
    """Finish an abandoned upload (`abandoned_uploads`) from what reached storage, checked like any
    upload; or reject it with a reason, so no card spins forever. Returns where the photo ended
    (None if it has been deleted meanwhile).

    Rejected too when the photographer has since uploaded the same file again: finishing this
    attempt as well would put the photo in the shoot twice, and "enhance the whole shoot" would
    charge for both. Safe to run from many workers at once, and beside a browser that reports
    back late: completion and rejection only ever move a photo out of `pending` once.
    """
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status != AssetStatus.PENDING:
        session.commit()
        return asset.status if asset else None
    # Only a later copy: an earlier one is a duplicate the photographer chose to upload anyway.
    uploaded_again = _has_duplicate(
        session=session, user_id=asset.user_id, shoot_id=asset.shoot_id, filename=asset.filename, size=asset.bytes,
        upload_ttl_seconds=settings.signed_url_ttl_seconds, chosen_after=asset.created_at,
    )
    session.commit()  # no transaction stays open across the storage round trips and the decode
    if storage.head(asset.storage_key) is None:
        reason, code = f"{asset.filename} never finished uploading. Upload it again.", "abandoned"
    elif uploaded_again:
        reason, code = f"{asset.filename} was uploaded again; this earlier attempt was dropped.", "uploaded_again"
    else:
        try:
            return complete_upload(session=session, storage=storage, settings=settings, user_id=asset.user_id, asset_id=asset.id).status
        except UploadRejected:
            return AssetStatus.REJECTED
    _reject(session=session, storage=storage, asset=asset, reason=reason, code=code)
    return asset.status


def _read_object(*, storage: Storage, settings: Settings, key: str, limit: int) -> tuple[bytes, str]:
    """The stored object's bytes (at most `limit`) and the format they are; ImageRejected if it is
    missing, empty, too big for that format or no photo."""
    info = storage.head(key)
    if info is None:
        raise ImageRejected(NOT_ARRIVED, code="not_arrived")
    if info.size == 0:
        raise ImageRejected("The file is empty.", code="empty")
    if info.size > limit:
        raise ImageRejected(f"The file is {megabytes(info.size)}; the limit is {megabytes(limit)}.", code="too_large")
    try:
        with storage.open_read(key) as stream:
            # Never more than the limit, even if the object was replaced after the HEAD.
            data = read_at_most(stream, limit)
    except FileNotFoundError:
        raise ImageRejected(NOT_ARRIVED, code="not_arrived") from None
    if len(data) > limit:
        raise ImageRejected(f"The file is larger than {megabytes(limit)}.", code="too_large")
    image_format = sniff_format(data[:SNIFF_BYTES]) or raw_format(data)
    if image_format is None:
        raise ImageRejected(NOT_A_PHOTO, code="not_a_photo")
    limit = size_limit(settings, image_format)
    if len(data) > limit:  # signed as a RAW, but it is not one
        raise ImageRejected(f"The file is {megabytes(len(data))}; the limit is {megabytes(limit)}.", code="too_large")
    return data, image_format


def _decode(data: bytes, image_format: str, *, settings: Settings, limits: CheckLimits | None) -> tuple[int, int, bytes, int, int]:
    """Upright width and height, and the thumbnail, whose full decode proves the file is intact.
    The decode holds the photo's share of `limits`' pixel budget, known from its header."""
    if image_format in RAW_FORMATS:
        return _decode_raw(data, settings=settings, limits=limits)
    try:
        header = open_image(data, max_pixels=settings.max_image_pixels)
        share = header.width * header.height / 1e6
        if header.format == "JPEG":  # decoded in draft mode near thumbnail size (make_thumbnail)
            share = min(share, DRAFT_MEGAPIXELS)
        with limits.pixels(share) if limits else nullcontext():
            # Inside the budget: reading a PNG's orientation decodes all of it (its EXIF may follow the pixels).
            width, height = oriented_size(header)
            del header
            thumbnail, thumb_width, thumb_height = make_thumbnail(data, max_pixels=settings.max_image_pixels)
    except (ImageRejected, MemoryError, BudgetExhausted):
        raise  # out of memory (or no budget) says nothing about the file: it must not be rejected for it
    except Exception as exc:  # noqa: BLE001  (an untrusted file may trip any decoder error)
        log.info("decoding an upload failed: %s", exc.__class__.__name__)
        raise ImageRejected(UNREADABLE) from exc
    return width, height, thumbnail, thumb_width, thumb_height


def _decode_raw(data: bytes, *, settings: Settings, limits: CheckLimits | None) -> tuple[int, int, bytes, int, int]:
    """A camera RAW's upright size and thumbnail, from its embedded preview where it has one; its
    sensor data is unpacked (so a cut-off file is refused here, not in a job), never developed."""
    try:
        with opened_raw(data, max_pixels=settings.max_image_pixels) as raw:
            with limits.pixels(raw_megapixels(raw) * CHECK_SHARE) if limits else nullcontext():
                check = inspect_raw(raw, max_pixels=settings.max_image_pixels)
                thumbnail = encode_jpeg(check.thumbnail, quality=THUMB_QUALITY)
    except (ImageRejected, MemoryError, BudgetExhausted):
        raise
    except Exception as exc:  # noqa: BLE001  (an untrusted file may trip any decoder error)
        log.info("decoding a RAW upload failed: %s", exc.__class__.__name__)
        raise ImageRejected(UNREADABLE) from exc
    return check.width, check.height, thumbnail, check.thumbnail.width, check.thumbnail.height


def _reject(*, session: Session, storage: Storage, asset: Asset, reason: str, code: str) -> None:
    """Mark the asset rejected with a reason the UI can show (counted by `code`), then delete its object.

    The object goes only if this call moved the photo out of `pending`: a completion that got
    there first has made it a ready photo whose original must stay.
    """
    marked = session.execute(
        update(Asset)
        .where(Asset.id == asset.id, Asset.status == AssetStatus.PENDING)
        .values(status=AssetStatus.REJECTED, reject_reason=reason[:500])
    )
    if marked.rowcount == 1:
        after_commit(session, UPLOADS_REJECTED.labels(code).inc)
    session.commit()
    session.refresh(asset)
    if marked.rowcount == 1:
        log.info("upload %s rejected: %s", asset.id, reason)
        try:
            storage.delete(asset.storage_key)
        except Exception:  # noqa: BLE001  (the photographer still hears the reason; the object costs storage only)
            log.warning("could not delete rejected upload %s from storage", asset.id, exc_info=True)
