"""Image pipeline: each stage of a job's image work, ours against the bare Pillow calls for the
same step, on a 24-megapixel camera JPEG and a 12-megapixel iPhone HEIC, in one run.

Goals: the worker's whole pipeline within 1.3× the sum of the bare steps (no wasted decodes or
copies), and the upload thumbnail within 1.2× of a JPEG draft-mode decode-and-resize.
"""

from __future__ import annotations

import io
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageOps

from bench.measure import Pair, can_measure_memory, compare, mib, ms
from bench.photos import camera_jpeg, iphone_heic
from luster_app.config import Settings
from luster_app.engines.openai_models import choose_size, model_spec
from luster_app.imaging import encode_jpeg, make_thumbnail, open_image
from luster_app.imaging.decode import _register_heif, _to_srgb, _upright, srgb_profile
from luster_app.imaging.encode import OUTPUT_QUALITY, THUMB_QUALITY
from luster_app.imaging.postprocess import pad_to_canvas
from luster_app.models import Asset, Job
from luster_app.storage.local import LocalStorage
from worker.pipeline import THUMB_LONG_EDGE, ImageLimits, PixelBudget, render, return_photo_memory_to_the_os, thumbnail

PIPELINE_GOAL = 1.3
THUMBNAIL_GOAL = 1.2
MAX_PIXELS = Settings(_env_file=None).max_image_pixels
CANVAS_MODEL = Settings(_env_file=None).openai_image_model


class CanvasOnlyEngine:
    """The OpenAI engine's input preparation (fit and pad to the model's canvas) with the edit
    itself left out: it hands the photo back unchanged, so the pipeline runs without a network."""

    name, model, presets, cpu_bound = "bench", "", frozenset({"enhance"}), True

    def supports(self, preset: str) -> bool:
        return preset in self.presets

    def edit(self, request: Any) -> Image.Image:
        pad_to_canvas(request.image, choose_size(model_spec(CANVAS_MODEL), request.image.size))
        return request.image


# --- the bare Pillow calls, one per stage ---

def bare_decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def bare_to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc:
        return image  # no profile: the bare way has nothing to do
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(image, source, srgb_profile(), outputMode="RGB")


def bare_strip(image: Image.Image) -> Image.Image:
    """The usual way to be sure no metadata survives: copy the pixels into a new image."""
    return Image.frombytes(image.mode, image.size, image.tobytes())


def bare_engine_input(image: Image.Image) -> Image.Image:
    return ImageOps.pad(image, choose_size(model_spec(CANVAS_MODEL), image.size), Image.Resampling.LANCZOS)


def bare_encode(image: Image.Image, quality: int = OUTPUT_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _thumb_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = THUMB_LONG_EDGE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def bare_output_thumbnail(image: Image.Image) -> bytes:
    small = image.resize(_thumb_size(image.size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return bare_encode(small, THUMB_QUALITY)


def bare_upload_thumbnail(data: bytes) -> bytes:
    """Decode-and-resize with JPEG draft mode (DCT scaling), as Pillow's `thumbnail` does."""
    image = Image.open(io.BytesIO(data))
    image.thumbnail((THUMB_LONG_EDGE, THUMB_LONG_EDGE), Image.Resampling.LANCZOS)
    return bare_encode(image, THUMB_QUALITY)


def ours_strip(image: Image.Image) -> Image.Image:
    """What `normalise` does: a fresh info dict; the encoder is given empty EXIF and XMP."""
    image.info = {}
    return image


def ours_decode(data: bytes) -> Image.Image:
    image = open_image(data, max_pixels=MAX_PIXELS)
    image.load()
    return image


# --- the run ---

def _stages(data: bytes, repeat: int, memory: bool) -> list[tuple[str, Pair]]:
    decoded = bare_decode(data)
    upright = ImageOps.exif_transpose(decoded)
    srgb = bare_to_srgb(upright)
    copy_of = lambda image: (lambda: image.copy())  # noqa: E731  (a fresh input for in-place steps)
    stages: list[tuple[str, Callable[[], Pair]]] = [
        ("decode", lambda: compare(lambda: ours_decode(data), lambda: bare_decode(data), repeat=repeat, memory=memory)),
        ("orient (EXIF)", lambda: compare(lambda: _upright(decoded), lambda: ImageOps.exif_transpose(decoded), repeat=repeat, memory=memory)),
        ("colour to sRGB", lambda: compare(_to_srgb, bare_to_srgb, setup=copy_of(upright), repeat=repeat, memory=memory)),
        ("metadata strip", lambda: compare(ours_strip, bare_strip, setup=copy_of(srgb), repeat=repeat, memory=memory)),
        ("prepare engine input", lambda: compare(
            lambda: pad_to_canvas(srgb, choose_size(model_spec(CANVAS_MODEL), srgb.size)),
            lambda: bare_engine_input(srgb), repeat=repeat, memory=memory)),
        ("output encode", lambda: compare(lambda: encode_jpeg(srgb), lambda: bare_encode(srgb), repeat=repeat, memory=memory)),
        ("output thumbnail", lambda: compare(lambda: thumbnail(srgb), lambda: bare_output_thumbnail(srgb), repeat=repeat, memory=memory)),
        ("upload thumbnail", lambda: compare(
            lambda: make_thumbnail(data, max_pixels=MAX_PIXELS), lambda: bare_upload_thumbnail(data), repeat=repeat, memory=memory)),
    ]
    return [(name, measure()) for name, measure in stages]


def _pipeline(data: bytes, filename: str, scratch: Path, repeat: int, memory: bool) -> tuple[Pair, Pair]:
    """Fetching the original, then the worker's `render` (fetch, normalise, engine input, encode,
    thumbnail) against the bare steps chained."""
    storage = LocalStorage(root=scratch / "storage", secret_path=scratch / "url.key", base_url="http://bench")
    key = f"bench/{uuid.uuid4()}/{filename}"
    storage.put_bytes(key, data, content_type="application/octet-stream")
    size = Image.open(io.BytesIO(data)).size
    original = Asset(id=uuid.uuid4(), storage_key=key, width=size[0], height=size[1])
    job = Job(id=uuid.uuid4(), preset="enhance", params={}, prompt_text="")
    limits = ImageLimits(cpu=threading.BoundedSemaphore(1), budget=PixelBudget(1000), max_pixels=MAX_PIXELS)
    engine = CanvasOnlyEngine()
    path = storage.path_for(key)

    def bare_chain() -> tuple[bytes, bytes]:
        image = bare_to_srgb(ImageOps.exif_transpose(bare_decode(path.read_bytes())))
        bare_engine_input(image)
        return bare_encode(image), bare_output_thumbnail(image)

    fetch = compare(lambda: storage.get_bytes(key), path.read_bytes, repeat=repeat, memory=False)
    whole = compare(lambda: render(job, original, storage=storage, engine=engine, limits=limits), bare_chain,
                    repeat=repeat, memory=memory)
    return fetch, whole


def _goal(name: str, label: str) -> float | None:
    if name.startswith("whole pipeline (vs sum"):
        return PIPELINE_GOAL
    if name == "upload thumbnail" and "JPEG" in label:  # draft mode is a JPEG feature
        return THUMBNAIL_GOAL
    return None


def run(env: Any) -> Any:
    from bench.common import Section

    _register_heif()
    return_photo_memory_to_the_os()  # as the worker does: freed photos leave the process
    repeat = 2 if env.quick else 5
    memory = can_measure_memory()
    rows = []
    photos = [("24 MP camera JPEG", camera_jpeg(), "original.jpg"), ("12 MP iPhone HEIC", iphone_heic(), "original.heic")]
    for label, data, filename in photos:
        stages = _stages(data, repeat, memory)
        with tempfile.TemporaryDirectory(dir=env.scratch) as scratch:
            fetch, whole = _pipeline(data, filename, Path(scratch), repeat, memory)
        summed = fetch.bare_s + sum(p.bare_s for name, p in stages if name not in ("metadata strip", "upload thumbnail"))
        results = [
            ("fetch original", fetch), *stages,
            ("whole pipeline (vs bare chain)", whole),
            ("whole pipeline (vs sum of bare steps)", Pair(whole.ours_s, summed, whole.ours_mib, None)),
        ]
        for name, pair in results:
            goal = _goal(name, label)
            verdict = "" if goal is None else f"{'met' if pair.ratio <= goal else 'NOT met'} (≤ {goal}×)"
            # Both under a tenth of a millisecond: nothing to compare.
            ratio = "–" if max(pair.ours_s, pair.bare_s) < 1e-4 else f"{pair.ratio:.2f}×"
            rows.append((label, name, ms(pair.ours_s), ms(pair.bare_s), ratio,
                         mib(pair.ours_mib), mib(pair.bare_mib), verdict))
    return Section(
        title="Image pipeline",
        header=("photo", "stage", "ours (ms)", "bare Pillow (ms)", "ratio", "ours peak (MiB)", "bare peak (MiB)", "goal"),
        rows=rows,
        notes=[
            f"Best of {repeat} runs each, ours and bare alternating (the machine is shared: the fastest run is the",
            "step's own cost). Peak = resident high-water mark above the resident size when the step began",
            "(freed photos are returned to the OS, as in the worker).",
            "Bare steps: `Path.read_bytes`, `Image.open(...).load()`, `ImageOps.exif_transpose`,",
            "`ImageCms.profileToProfile` (when the photo has a profile), `ImageOps.pad` to the model's canvas,",
            "`save(JPEG, quality=92)`, `resize(LANCZOS, reducing_gap=2)` + `save(quality=85)`; for the upload",
            "thumbnail, `Image.thumbnail` (JPEG draft mode: DCT scaling) + save. The bare metadata strip copies",
            "the pixels into a new image; ours drops the metadata without a copy. The whole pipeline is the",
            "worker's `render` with an engine that only prepares its input (the model call and the edit",
            "transfer are not timed); its sum leaves out the strip and the upload thumbnail.",
        ],
    )
