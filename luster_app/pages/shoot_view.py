"""The shoot page's calls to the core (plain functions, no Reflex) and the view data its state holds."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from luster_app.context import AppContext
from luster_app.models import JobStatus
from luster_app.services import brackets, corrections, downloads, gallery, shoots
from luster_app.services.jobs import JobOptions, create_batch
from luster_app.services.presets import list_presets
from luster_app.services.shoots import AssetView, OutputView

STATUS_WORDS = {
    JobStatus.QUEUED: "Queued",
    JobStatus.PROCESSING: "Processing",
    JobStatus.NEEDS_REVIEW: "Needs your review",
    JobStatus.SUCCEEDED: "Succeeded",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELED: "Canceled",
}
# Past this share of the cards moved since the card list was sent, a poll tick sends every card's job afresh.
MOVED_BEFORE_SETTLING = 0.25


@dataclasses.dataclass
class OutputCard:
    id: str
    label: str
    url: str
    thumb_url: str
    job_id: str
    altered: bool


@dataclasses.dataclass
class PhotoCard:
    """What a card shows that only uploads, deletions and grouping change (its job: CardProgress)."""

    id: str
    filename: str
    upload_status: str  # pending, ready, rejected
    reject_reason: str
    thumb_url: str  # the photo's own thumbnail (a bracket group's: its merged photo's, else its first frame's)
    dimensions: str
    urls_issued_at: float
    bracket_id: str = ""  # a frame's group, or the group this card is
    is_group: bool = False  # the card of a bracket group (its merged photo), not of one photo


@dataclasses.dataclass
class CardProgress:
    """What a card's latest job changes: kept apart from the PhotoCard so that a poll tick sends
    only the cards whose job moved, not every card of the shoot."""

    job_id: str = ""
    job_status: str = ""  # "" (never enhanced), queued, processing, succeeded, failed
    job_status_word: str = ""
    job_preset: str = ""
    job_error: str = ""
    outputs: list[OutputCard] = dataclasses.field(default_factory=list)
    latest_output_id: str = ""
    latest_output_url: str = ""
    cover_url: str = ""  # the newest output's thumbnail, shown instead of the photo's own


@dataclasses.dataclass
class ShootCards:
    photos: list[PhotoCard]
    progress: dict[str, CardProgress]  # by card id, one for every card


@dataclasses.dataclass
class Suggestion:
    """Photos whose EXIF says they are one bracket, not yet grouped."""

    ids: list[str]
    label: str


@dataclasses.dataclass
class UploadRow:
    key: str
    name: str
    state: str  # queued, uploading, checking, done, failed, duplicate
    error: str
    percent: int
    retryable: bool = False  # failed for a reason that another try may fix (connection, expired link)


@dataclasses.dataclass
class Choice:
    value: str
    label: str


@dataclasses.dataclass
class ParamField:
    name: str
    title: str
    hint: str
    kind: str  # slider, switch, choice
    minimum: float
    maximum: float
    step: float
    default: str
    options: list[Choice]


@dataclasses.dataclass
class PresetOption:
    name: str
    title: str
    description: str
    available: bool
    altering: bool
    fields: list[ParamField]


@dataclasses.dataclass
class ShootInfo:
    name: str
    address: str
    disclose: bool
    auto_privacy: bool = False


def shoot_info(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> ShootInfo:
    with context.session() as session:
        shoot = shoots.get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
        return ShootInfo(name=shoot.name, address=shoot.address or "", disclose=shoot.disclose_alterations,
                         auto_privacy=shoot.auto_privacy)


def photo_cards(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> ShootCards:
    """The shoot's photos, each with its latest job and its outputs (newest last)."""
    with context.session() as session:
        assets = shoots.list_assets_with_urls(
            session=session, storage=context.storage, settings=context.settings, user_id=user_id, shoot_id=shoot_id
        )
        jobs = gallery.jobs_of_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
        groups = brackets.list_brackets(
            session=session, storage=context.storage, settings=context.settings, user_id=user_id, shoot_id=shoot_id
        ).groups
    latest = {job.asset_id: job for job in jobs}  # oldest first, so the newest job per photo wins
    presets = {job.id: job.preset for job in jobs}
    issued = time.time()
    # Uploads still on their way or refused show in the upload list, with their progress or reason.
    ready = [asset for asset in assets if asset.status == "ready"]
    photos = [_card(asset, issued) for asset in ready]
    progress = {str(asset.id): _progress(latest.get(asset.id), asset.outputs, presets) for asset in ready}
    group_cards = [_group_card(group, photos, issued) for group in groups]
    for group, card in zip(groups, group_cards, strict=True):
        progress[card.id] = _progress(latest.get(group.photo_id), group.merged.outputs if group.merged else [], presets)
    return ShootCards(photos=photos + group_cards, progress=progress)


def job_marks(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> dict[str, str]:
    """Each card's latest job and its status: while these stay the same, no card has anything new."""
    with context.session() as session:
        jobs = gallery.jobs_of_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
    return {str(job.asset_id): f"{job.id} {job.status}" for job in jobs}  # oldest first: the newest wins


def _group_card(group: brackets.BracketView, cards: list[PhotoCard], issued: float) -> PhotoCard:
    """A bracket group as one card: its merged photo once made, else its first frame's thumbnail."""
    frames = [card for card in cards if card.bracket_id == str(group.id)]
    if group.merged is not None:
        card = _card(group.merged, issued)
    else:
        card = PhotoCard(id=str(group.photo_id), filename="", upload_status="ready", reject_reason="", thumb_url="",
                         dimensions=frames[0].dimensions if frames else "", urls_issued_at=issued)
    card.filename = f"Bracket of {len(group.asset_ids)} photos"
    card.thumb_url = card.thumb_url or (frames[0].thumb_url if frames else "")
    card.bracket_id, card.is_group = str(group.id), True
    return card


def suggestions(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, cards: list[PhotoCard]) -> list[Suggestion]:
    """The groups the shoot's ungrouped photos' EXIF suggests, named by the photos' `cards`."""
    with context.session() as session:
        listed = brackets.list_brackets(
            session=session, storage=context.storage, settings=context.settings, user_id=user_id, shoot_id=shoot_id
        )
    names = {card.id: card.filename for card in cards}
    groups = [[str(i) for i in group] for group in listed.suggestions]
    return [Suggestion(ids=ids, label=", ".join(names.get(i, "a photo") for i in ids)) for ids in groups]


def group_photos(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, asset_ids: list[str]) -> None:
    with context.session() as session:
        brackets.create_bracket(session=session, user_id=user_id, shoot_id=shoot_id, asset_ids=[uuid.UUID(a) for a in asset_ids])


def ungroup(context: AppContext, user_id: uuid.UUID, bracket_id: str) -> None:
    with context.session() as session:
        brackets.delete_bracket(
            session=session, storage=context.storage, settings=context.settings, user_id=user_id, bracket_id=uuid.UUID(bracket_id)
        )


def _card(asset: AssetView, issued: float) -> PhotoCard:
    return PhotoCard(
        id=str(asset.id),
        filename=asset.filename,
        upload_status=asset.status,
        reject_reason=asset.reject_reason or "",
        thumb_url=asset.thumb_url or "",
        dimensions=f"{asset.width} × {asset.height}" if asset.width and asset.height else "",
        urls_issued_at=issued,
        bracket_id=str(asset.bracket_id or ""),
    )


def _progress(job: gallery.JobBrief | None, asset_outputs: list[OutputView], presets: dict[uuid.UUID, str]) -> CardProgress:
    outputs = [
        OutputCard(
            id=str(output.id),
            label=f"{presets.get(output.job_id, 'output').title()} · v{output.version or 1}",
            url=output.url,
            thumb_url=output.thumb_url or output.url,
            job_id=str(output.job_id or ""),
            altered=presets.get(output.job_id) in gallery.SCENE_ALTERING_PRESETS,
        )
        for output in sorted(asset_outputs, key=lambda o: (o.created_at, o.version or 0))
    ]
    if job is None:
        return CardProgress(outputs=outputs, latest_output_id=outputs[-1].id if outputs else "",
                            latest_output_url=outputs[-1].url if outputs else "",
                            cover_url=outputs[-1].thumb_url if outputs else "")
    return CardProgress(
        job_id=str(job.id),
        job_status=job.status,
        job_status_word=STATUS_WORDS.get(job.status, ""),
        job_preset=job.preset,
        job_error=(job.error_message or "") if job.status in (JobStatus.FAILED, JobStatus.CANCELED) else "",
        outputs=outputs,
        latest_output_id=outputs[-1].id if outputs else "",
        latest_output_url=outputs[-1].url if outputs else "",
        cover_url=outputs[-1].thumb_url if outputs else "",
    )


def keep_fresh_urls(old: ShootCards, new: ShootCards, *, ttl_seconds: int) -> ShootCards:
    """`new`, reusing `old`'s signed URLs of the same files while they are young, so that a refresh
    neither reloads every image nor changes the cards whose job did not move."""
    previous = {card.id: card for card in old.photos}
    photos, progress = [], dict(new.progress)
    for card in new.photos:
        before = previous.get(card.id)
        if before is None or card.urls_issued_at - before.urls_issued_at > ttl_seconds / 2:
            photos.append(card)
            continue
        photos.append(dataclasses.replace(card, thumb_url=_reused([before.thumb_url], card.thumb_url),
                                          urls_issued_at=before.urls_issued_at))
        if card.id in old.progress and card.id in progress:
            progress[card.id] = _progress_reusing(old.progress[card.id], progress[card.id])
    return ShootCards(photos=photos, progress=progress)


def _reused(signed: list[str], url: str) -> str:
    """The URL among `signed` of the same file as `url` (its path: only the signature differs), else `url`."""
    path = url.split("?", 1)[0]
    return next((old for old in signed if old.split("?", 1)[0] == path), url)


def _progress_reusing(old: CardProgress, new: CardProgress) -> CardProgress:
    signed = [url for output in old.outputs for url in (output.url, output.thumb_url)]
    outputs = [dataclasses.replace(o, url=_reused(signed, o.url), thumb_url=_reused(signed, o.thumb_url)) for o in new.outputs]
    return dataclasses.replace(new, outputs=outputs, latest_output_url=_reused(signed, new.latest_output_url),
                               cover_url=_reused(signed, new.cover_url))


def moved_cards(settled: dict[str, CardProgress], fresh: dict[str, CardProgress]) -> dict[str, CardProgress] | None:
    """The cards of `fresh` whose job differs from `settled`; None once so many moved that sending
    `fresh` whole costs about as much (a batch of the whole shoot just queued, say)."""
    moved = {card_id: progress for card_id, progress in fresh.items() if settled.get(card_id) != progress}
    return None if len(moved) > MOVED_BEFORE_SETTLING * max(1, len(fresh)) else moved


def upload_rows(snapshot: list[dict[str, Any]]) -> list[UploadRow]:
    """The browser's upload queue as rows to show."""
    return [
        UploadRow(
            key=str(row.get("key", "")),
            name=str(row.get("name", "")),
            state=str(row.get("state", "")),
            error=str(row.get("error", "")),
            percent=int(100 * int(row.get("loaded") or 0) / max(1, int(row.get("size") or 1))),
            retryable=bool(row.get("retryable")),
        )
        for row in snapshot
    ]


def preset_options(presets: list[dict[str, Any]]) -> list[PresetOption]:
    """Presets as the picker offers them, with controls for each parameter."""
    return [
        PresetOption(
            name=preset["name"],
            title=preset["title"],
            description=preset["description"],
            available=bool(preset.get("available", True)),
            altering=preset["name"] in gallery.SCENE_ALTERING_PRESETS,
            fields=_fields(preset.get("params_schema") or {}),
        )
        for preset in presets
    ]


def _fields(schema: dict[str, Any]) -> list[ParamField]:
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        common = {"name": name, "title": prop.get("title", name.replace("_", " ").title()),
                  "hint": prop.get("description", ""), "minimum": 0.0, "maximum": 1.0, "step": 0.05, "options": []}
        default = prop.get("default")
        if "enum" in prop:
            options = [Choice(value=str(v), label=str(v).replace("_", " ").capitalize()) for v in prop["enum"]]
            fields.append(ParamField(**{**common, "kind": "choice", "default": str(default or prop["enum"][0]),
                                        "options": options}))
        elif prop.get("type") == "boolean":
            fields.append(ParamField(**common, kind="switch", default="true" if default else "false"))
        elif prop.get("type") in ("number", "integer"):
            integer = prop["type"] == "integer"
            fields.append(ParamField(**{**common, "kind": "slider", "minimum": float(prop.get("minimum", 0)),
                                        "maximum": float(prop.get("maximum", 1)), "step": 1.0 if integer else 0.05,
                                        "default": str(default if default is not None else prop.get("minimum", 0))}))
    return fields


def param_values(fields: list[ParamField], values: dict[str, str]) -> dict[str, Any]:
    """The chosen values typed as the preset's schema expects them."""
    typed: dict[str, Any] = {}
    for field in fields:
        raw = values.get(field.name, field.default)
        if field.kind == "switch":
            typed[field.name] = raw == "true"
        elif field.kind == "slider":
            number = float(raw)
            typed[field.name] = int(number) if field.step == 1.0 else round(number, 2)
        else:
            typed[field.name] = raw
    return typed


def presets(context: AppContext) -> list[PresetOption]:
    with context.session() as session:
        return preset_options(list_presets(session=session, engine=context.image_engine.name))


def enhance(
    context: AppContext, user_id: uuid.UUID, asset_ids: list[str], preset: str, params: dict[str, Any], key: str,
    groups: dict[str, str] | None = None,
) -> int:
    """Queue the photos, and the bracket groups among them (`groups`: card id to group id); `key`
    is the click's Idempotency-Key, so a repeat of it queues nothing more."""
    groups = groups or {}
    with context.session() as session:
        jobs = create_batch(
            session=session, user_id=user_id, asset_ids=[uuid.UUID(a) for a in asset_ids if a not in groups],
            bracket_ids=[uuid.UUID(groups[a]) for a in asset_ids if a in groups], preset=preset,
            params=params, options=JobOptions.for_context(context), idempotency_key=key,
        )
    return len(jobs)


def download_link(context: AppContext, user_id: uuid.UUID, **target: uuid.UUID) -> downloads.BrowserDownload:
    with context.session() as session:
        return downloads.create_download_link(session=session, user_id=user_id, **target)


def set_disclose(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, disclose: bool) -> None:
    with context.session() as session:
        gallery.set_disclose_alterations(session=session, user_id=user_id, shoot_id=shoot_id, disclose=disclose)


def batch_progress(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> gallery.BatchProgress:
    with context.session() as session:
        return gallery.batch_progress(session=session, user_id=user_id, shoot_id=shoot_id)


def set_auto_privacy(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, on: bool) -> None:
    with context.session() as session:
        corrections.set_auto_privacy(session=session, user_id=user_id, shoot_id=shoot_id, on=on)
