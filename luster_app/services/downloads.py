"""Downloads of finished photos: one output, or every output of a shoot as a ZIP streamed as it is written.

Scene-altering outputs of a shoot with the "Digitally altered" option on get the caption drawn in
at download time, so the stored output stays clean and the option can change later. Browsers
download through short-lived links made after an ownership check (`create_download_link`).
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath

from sqlalchemy import delete, select
from sqlmodel import Session

from luster_app.imaging import encode_jpeg, fit_long_edge, load_normalised
from luster_app.imaging.budget import CheckLimits
from luster_app.imaging.caption import add_caption
from luster_app.imaging.raw import decoded_megapixels
from luster_app.models import Asset, AssetKind, AssetStatus, DownloadLink, Job, Shoot, utcnow
from luster_app.services.errors import Forbidden, Invalid, NotFound
from luster_app.services.gallery import decoding_in_turn, is_altered
from luster_app.services.shoots import get_shoot
from luster_app.storage import Storage

DOWNLOAD_LINK_SECONDS = 300
CHUNK_BYTES = 1 << 20
LINK_EXPIRED = "This download link has expired; press Download again on the shoot page."


# Export sizes: the long edge in pixels (None: as enhanced). 2048 px is the common MLS upload limit.
SIZES: dict[str, int | None] = {"full": None, "mls": 2048, "web": 1280}
VERSIONS = ("latest", "all")


@dataclass(frozen=True)
class OutputFile:
    """One output to hand over: where it is stored, its file name, whether it gets the caption, and
    the long edge it is handed over at (None: as stored)."""

    asset_id: uuid.UUID
    storage_key: str
    filename: str
    captioned: bool
    long_edge: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def as_stored(self) -> bool:
        """Whether the stored bytes are the download: no caption, and no smaller size asked for."""
        fits = self.long_edge is None or (self.width is not None and self.height is not None
                                          and max(self.width, self.height) <= self.long_edge)
        return fits and not self.captioned


@dataclass(frozen=True)
class BrowserDownload:
    """A site-relative link a browser opens to download, and the file name it saves as."""

    path: str
    filename: str


@dataclass(frozen=True)
class LinkTarget:
    """What a download link opens: one output (`asset_id`) or a shoot's ZIP (`shoot_id`), for `user_id`."""

    user_id: uuid.UUID
    shoot_id: uuid.UUID | None
    asset_id: uuid.UUID | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_download_link(
    *, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID | None = None, asset_id: uuid.UUID | None = None
) -> BrowserDownload:
    """A link, valid for a few minutes, that downloads the user's output or shoot ZIP (NotFound if not theirs)."""
    if (shoot_id is None) == (asset_id is None):
        raise Invalid("A download is of one photo or of one shoot.")
    if shoot_id is not None:
        filename = zip_filename(get_shoot(session=session, user_id=user_id, shoot_id=shoot_id))
    else:
        filename = _owned_output(session, user_id, asset_id).filename
    # End the read before writing: SQLite cannot turn a read snapshot into a write once another
    # connection has written; a transaction that starts with its write waits its turn instead.
    session.commit()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired links of this user go as new ones are made, so the table stays small.
    session.execute(delete(DownloadLink).where(DownloadLink.user_id == user_id, DownloadLink.expires_at < now))
    session.add(
        DownloadLink(token_hash=_hash(token), user_id=user_id, shoot_id=shoot_id, asset_id=asset_id,
                     expires_at=now + timedelta(seconds=DOWNLOAD_LINK_SECONDS))
    )
    session.commit()
    return BrowserDownload(path=f"/api/downloads?token={token}", filename=filename)


def resolve_download_link(*, session: Session, token: str) -> LinkTarget:
    """What a download link opens; Forbidden once it has expired or if it never existed."""
    link = session.get(DownloadLink, _hash(token))
    if link is None or link.expires_at < utcnow():
        raise Forbidden(LINK_EXPIRED)
    return LinkTarget(user_id=link.user_id, shoot_id=link.shoot_id, asset_id=link.asset_id)


def _owned_output(session: Session, user_id: uuid.UUID, asset_id: uuid.UUID | None) -> Asset:
    output = session.execute(
        select(Asset).where(
            Asset.id == asset_id, Asset.user_id == user_id, Asset.kind == AssetKind.OUTPUT,
            Asset.status == AssetStatus.READY,
        )
    ).scalars().first()
    if output is None:
        raise NotFound("enhanced photo not found")
    return output


def _size(size: str) -> int | None:
    if size not in SIZES:
        raise Invalid(f"Unknown size {size!r}: choose one of {', '.join(SIZES)}.")
    return SIZES[size]


def _jobs(session: Session, outputs: list[Asset]) -> dict[uuid.UUID, Job]:
    """The job that made each output, by job id."""
    job_ids = {output.job_id for output in outputs if output.job_id is not None}
    return {job.id: job for job in session.execute(select(Job).where(Job.id.in_(job_ids))).scalars()} if job_ids else {}


def _output_files(session: Session, shoot: Shoot, outputs: list[Asset], *, size: str = "full",
                  names: dict[uuid.UUID, str] | None = None,
                  jobs: dict[uuid.UUID, Job] | None = None) -> list[OutputFile]:
    long_edge = _size(size)
    jobs = _jobs(session, outputs) if jobs is None else jobs
    return [
        OutputFile(
            asset_id=output.id,
            storage_key=output.storage_key,
            filename=(names or {}).get(output.id, output.filename),
            # The same test as the disclosure page's "Digitally altered".
            captioned=shoot.disclose_alterations and is_altered(jobs.get(output.job_id)),
            long_edge=long_edge,
            width=output.width,
            height=output.height,
        )
        for output in outputs
    ]


def output_file(*, session: Session, user_id: uuid.UUID, asset_id: uuid.UUID, size: str = "full") -> OutputFile:
    """The user's output as it should be downloaded, at `size` (NotFound for anyone else's)."""
    output = _owned_output(session, user_id, asset_id)
    shoot = get_shoot(session=session, user_id=user_id, shoot_id=output.shoot_id)
    return _output_files(session, shoot, [output], size=size)[0]


def shoot_output_files(
    *, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID, versions: str = "all", size: str = "full",
    assets: list[uuid.UUID] | None = None,
) -> tuple[Shoot, list[OutputFile]]:
    """The shoot and its delivered (ready) outputs in shoot order: every version or each photo's
    latest, of every photo or of the photos `assets`, at `size`; named `{nn}-{photo}-{preset}.jpg`
    (`nn` the photo's place in the shoot). Outputs held for review or rejected are never included.
    NotFound for another user's shoot, or for an asset id that is not a photo of it."""
    if versions not in VERSIONS:
        raise Invalid(f"Unknown versions {versions!r}: choose latest or all.")
    _size(size)
    shoot = get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    mine = (Asset.shoot_id == shoot_id, Asset.user_id == user_id, Asset.status == AssetStatus.READY)
    originals = list(session.execute(
        # A bracket group's merged photo is the group's original: its versions are numbered as a photo.
        select(Asset).where(*mine, Asset.kind.in_((AssetKind.ORIGINAL, AssetKind.MERGED)))
        .order_by(Asset.created_at, Asset.id)
    ).scalars())
    place = {original.id: number for number, original in enumerate(originals, start=1)}
    if assets is not None and not set(assets) <= set(place):
        raise NotFound("photo not found")
    wanted = set(assets) if assets is not None else set(place)
    outputs = [
        output for output in session.execute(
            select(Asset).where(*mine, Asset.kind == AssetKind.OUTPUT).order_by(Asset.version, Asset.created_at, Asset.id)
        ).scalars()
        if output.parent_asset_id in wanted
    ]
    if versions == "latest":  # later rows are newer versions
        outputs = list({output.parent_asset_id: output for output in outputs}.values())
    outputs.sort(key=lambda output: (place[output.parent_asset_id], output.version or 0))
    jobs = _jobs(session, outputs)
    presets = {job_id: job.preset for job_id, job in jobs.items()}
    names = _export_names(originals, outputs, presets, digits=max(2, len(str(len(originals)))))
    return shoot, _output_files(session, shoot, outputs, size=size, names=names, jobs=jobs)


def _export_names(
    originals: list[Asset], outputs: list[Asset], presets: dict[uuid.UUID, str], *, digits: int
) -> dict[uuid.UUID, str]:
    """`{nn}-{photo stem}-{preset}.jpg` per output; a second version of the same preset adds `-v{n}`."""
    by_id = {original.id: (number, original) for number, original in enumerate(originals, start=1)}
    names: dict[uuid.UUID, str] = {}
    taken: set[str] = set()
    for output in outputs:
        number, original = by_id[output.parent_asset_id]
        stem = _safe_stem(PurePosixPath(original.filename).stem)
        name = f"{number:0{digits}d}-{stem}-{presets.get(output.job_id, 'edit')}"
        if f"{name}.jpg" in taken:
            name = f"{name}-v{output.version}"
        names[output.id] = _unique_name(f"{name}.jpg", taken)
    return names


def _safe_stem(stem: str) -> str:
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", stem).strip(" .")[:80] or "photo"


def prepared_bytes(*, storage: Storage, file: OutputFile, limits: CheckLimits, max_pixels: int, patient: bool = False) -> bytes:
    """The output at its download size, with the "Digitally altered" caption drawn in if it gets
    one: an sRGB JPEG without metadata. Decoded within the web process's bounds (a slot and the
    photo's pixels, shared with the upload checks); not free in time: Busy (503). `patient`: wait
    for them as long as it takes instead (a ZIP already streaming)."""
    megapixels = decoded_megapixels(file.width, file.height, "image/jpeg", unknown=max_pixels / 1e6)
    with decoding_in_turn(limits, megapixels, patient=patient):
        image = load_normalised(storage.get_bytes(file.storage_key), max_pixels=max_pixels)
        image = fit_long_edge(image, file.long_edge)
        return encode_jpeg(add_caption(image) if file.captioned else image)


def output_chunks(*, storage: Storage, file: OutputFile, limits: CheckLimits, max_pixels: int) -> Iterator[bytes]:
    """The output's bytes as a ZIP entry: resized and captioned if it must be, else as stored."""
    if not file.as_stored:
        yield prepared_bytes(storage=storage, file=file, limits=limits, max_pixels=max_pixels, patient=True)
        return
    with storage.open_read(file.storage_key) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable file: zipfile writes into it, the response takes what was written."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_chunks(*, storage: Storage, files: list[OutputFile], limits: CheckLimits, max_pixels: int) -> Iterator[bytes]:
    """A ZIP of `files`, produced piece by piece: at most one photo's bytes are held at a time."""
    sink = _ChunkSink()
    names: set[str] = set()
    # Photos are already compressed: storing them keeps the ZIP fast to make and to open.
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for file in files:
            info = zipfile.ZipInfo(_unique_name(file.filename, names), date_time=utcnow().timetuple()[:6])
            with archive.open(info, mode="w") as entry:
                for chunk in output_chunks(storage=storage, file=file, limits=limits, max_pixels=max_pixels):
                    entry.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def _unique_name(filename: str, taken: set[str]) -> str:
    path = PurePosixPath(filename)
    name, n = filename, 1
    while name in taken:
        n += 1
        name = f"{path.stem} ({n}){path.suffix}"
    taken.add(name)
    return name


def zip_filename(shoot: Shoot) -> str:
    """`12 Oak Street.zip` from the shoot's name, safe as a file name."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", shoot.name).strip(" .") or "shoot"
    return f"{stem[:100]}.zip"
