"""From a stored original to an output JPEG and its thumbnail, within bounded CPU and memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from PIL import Image

from luster_app.config import Settings
from luster_app.engines.base import EngineRequest, ImageEngine
from luster_app.imaging import encode_jpeg, load_normalised
from luster_app.imaging.encode import THUMB_QUALITY
from luster_app.metrics import engine_call
from luster_app.models import Asset, Job
from luster_app.storage.base import Storage

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_ALLOCATION = 1 << 20

# Assumed size of a photo whose dimensions were never recorded: a large camera frame.
UNKNOWN_MEGAPIXELS = 24.0
THUMB_LONG_EDGE = 512


def return_photo_memory_to_the_os() -> bool:
    """Have glibc give every allocation over 1 MiB its own mapping, returned to the OS when freed.

    By default glibc raises that threshold after the first large free and then serves photos
    from per-thread heaps, where freed photos stay resident; with many job threads the process
    then grows with concurrency whatever the pixel budget says. Process-wide; False where the
    C library is not glibc (nothing to tune there).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION))
    except (OSError, AttributeError):
        return False


class PixelBudget:
    """A counting semaphore in megapixels: how much decoded photo one process may hold at once.

    A job holds its photo's share from decode to encode, across the engine call, so memory
    stays bounded however many jobs are in flight. A photo larger than the whole budget
    waits until it can run alone.
    """

    def __init__(self, megapixels: float) -> None:
        self.total = float(megapixels)
        self._free = self.total
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, megapixels: float) -> Iterator[None]:
        share = min(max(megapixels, 0.0), self.total)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= share)
            self._free -= share
        try:
            yield
        finally:
            with self._changed:
                self._free += share
                self._changed.notify_all()


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


def megapixels(asset: Asset) -> float:
    if asset.width and asset.height:
        return asset.width * asset.height / 1_000_000
    return UNKNOWN_MEGAPIXELS


def render(job: Job, original: Asset, *, storage: Storage, engine: ImageEngine, limits: ImageLimits) -> Rendered:
    """Fetch the original, normalise it (upright, sRGB, no metadata), edit it, encode output and thumbnail.

    Decoding and encoding run in the CPU slots; the engine call runs outside them (it waits
    on the network), unless the engine says it computes locally (`cpu_bound = True`).
    """
    with limits.budget.hold(megapixels(original)):
        data = storage.get_bytes(original.storage_key)
        with limits.cpu:
            image = load_normalised(data, max_pixels=limits.max_pixels)
        del data
        request = EngineRequest(
            image=image, preset=job.preset, params=job.params, prompt_text=job.prompt_text, label=original.filename
        )
        del image
        with limits.cpu if getattr(engine, "cpu_bound", False) else nullcontext(), engine_call(engine.name, job.preset):
            edited = engine.edit(request)
        del request
        with limits.cpu:
            jpeg = encode_jpeg(edited)
            thumb, thumb_width, thumb_height = _thumbnail(edited)
            width, height = edited.size
            del edited
    return Rendered(jpeg, width, height, thumb, thumb_width, thumb_height)


def _thumbnail(image: Image.Image) -> tuple[bytes, int, int]:
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
