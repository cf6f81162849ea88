"""From a stored original to an output JPEG and its thumbnail, within bounded CPU and memory."""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import cv2
from PIL import Image

from luster_app.config import Settings
from luster_app.engines.alteration import Alteration
from luster_app.engines.base import EngineError, EngineRequest, ImageEngine
from luster_app.imaging import encode_jpeg, load_normalised
from luster_app.imaging.budget import PixelBudget, return_photo_memory_to_the_os  # noqa: F401  (re-exported)
from luster_app.imaging.corrections import correct, nothing_changed
from luster_app.imaging.encode import THUMB_QUALITY
from luster_app.imaging.raw import decoded_megapixels
from luster_app.metrics import engine_call
from luster_app.models import Asset, Job
from luster_app.storage.base import Storage

# Assumed size of a photo whose dimensions were never recorded: a large camera frame.
UNKNOWN_MEGAPIXELS = 24.0
THUMB_LONG_EDGE = 512


@dataclass(frozen=True)
class ImageLimits:
    """Per-process bounds: CPU-heavy steps at once, and megapixels held decoded at once."""

    cpu: threading.BoundedSemaphore
    budget: PixelBudget
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        slots = settings.worker_cpu_slots or os.cpu_count() or 1
        return cls(
            cpu=threading.BoundedSemaphore(slots),
            budget=PixelBudget(settings.worker_image_budget_megapixels),
            max_pixels=settings.max_image_pixels,
        )


@dataclass(frozen=True)
class Rendered:
    """An encoded output and its thumbnail, not yet stored."""

    jpeg: bytes
    width: int
    height: int
    thumb: bytes
    thumb_width: int
    thumb_height: int
    alteration: Alteration | None = None  # what the edit redrew, where the engine measures it
    corrections: dict[str, Any] | None = None  # what the corrections the job asked for did (Job.corrections)


def one_thread_per_image_step() -> None:
    """Have OpenCV run each call on the calling thread alone, process-wide.

    The worker bounds its CPU-heavy steps itself (`ImageLimits.cpu`: WORKER_CPU_SLOTS at once).
    OpenCV's own thread pool would run past that bound, and between calls its idle threads spin
    (sched_yield) instead of sleeping: with Enhance straightening every photo, that spinning was
    about a tenth of a worker's CPU a job on small photos, on cores PostgreSQL and the other
    slots need. One straightening of a 12-megapixel photo takes about a tenth longer alone.
    """
    cv2.setNumThreads(1)


def megapixels(asset: Asset) -> float:
    """The original's share of the pixel budget while it is decoded: a camera RAW's development
    holds its sensor data and LibRaw's 16-bit image besides the photo (`DECODE_SHARE` times)."""
    return decoded_megapixels(asset.width, asset.height, asset.content_type, unknown=UNKNOWN_MEGAPIXELS)


def render(
    job: Job, original: Asset, *, storage: Storage, engine: ImageEngine, limits: ImageLimits, data: bytes | None = None
) -> Rendered:
    """Fetch the original (or take `data`: a bracket's merge), normalise it (upright, sRGB, no
    metadata), edit it, encode output and thumbnail.

    Decoding and encoding run in the CPU slots; the engine call runs outside them (it waits
    on the network), unless the engine says it computes locally (`cpu_bound = True`).
    """
    with limits.budget.hold(megapixels(original)):
        if data is None:
            data = storage.get_bytes(original.storage_key)
        with limits.cpu:
            image = load_normalised(data, max_pixels=limits.max_pixels)
            corrected = correct(image, job.preset, job.params, original=data)
        del data, image
        if corrected.only and not corrected.changed:
            raise EngineError("nothing_to_change", nothing_changed(corrected), transient=False)
        request = EngineRequest(
            image=corrected.image, preset=job.preset, params=job.params, prompt_text=job.prompt_text, label=original.filename
        )
        # Engines that measure what they redrew (honest edits) say so; others only edit.
        measured = getattr(engine, "edit_measured", None)
        edit = measured or (lambda request: (engine.edit(request), None))
        if corrected.only:
            # The corrections were all the job asked for: no engine call (and no AI cost).
            edited, alteration = corrected.image, None
        else:
            with limits.cpu if getattr(engine, "cpu_bound", False) else nullcontext(), engine_call(engine.name, job.preset):
                edited, alteration = edit(request)
        outcome = corrected.outcome()
        del request, corrected
        with limits.cpu:
            jpeg = encode_jpeg(edited)
            thumb, thumb_width, thumb_height = thumbnail(edited)
            width, height = edited.size
            del edited
    return Rendered(jpeg, width, height, thumb, thumb_width, thumb_height, alteration, outcome)


def thumbnail(image: Image.Image) -> tuple[bytes, int, int]:
    """The output's thumbnail (long edge 512, as for uploads), made from the pixels in hand.

    They are already upright, sRGB and metadata-free, so unlike `make_thumbnail` (which starts
    from a file) nothing is decoded or colour-converted again: on small photos that saved work
    is most of a job's CPU time. `reducing_gap` shrinks by whole factors first, so a 24-megapixel
    output is never copied at full size; 2 is what Pillow's `thumbnail` uses, and the Lanczos
    pass still sees twice the thumbnail's pixels, so it keeps its sharpness.
    """
    scale = THUMB_LONG_EDGE / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return encode_jpeg(image, quality=THUMB_QUALITY), image.width, image.height
