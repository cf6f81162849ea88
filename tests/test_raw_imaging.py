"""Camera RAW files through LibRaw: recognised by their bytes, developed with the camera's white
balance into sRGB and turned upright by their own orientation; the upload thumbnail comes from
the embedded preview. Every file is a real DNG made from a known Bayer mosaic (tests/dng_support.py)."""

from __future__ import annotations

import io
import threading
import uuid

import numpy as np
import pytest
from PIL import Image

from luster_app.config import Settings
from luster_app.imaging import ImageRejected, load_normalised
from luster_app.imaging.raw import DECODE_SHARE, UNREADABLE_RAW, decode_raw, inspect_raw, opened_raw, raw_format
from luster_app.models import Asset, Job
from luster_app.storage.local import LocalStorage
from tests.dng_support import make_dng
from tests.engines_for_tests import NoopEngine
from worker.pipeline import ImageLimits, PixelBudget, render

MAX_PIXELS = 100_000_000


def colour(rgb: tuple[float, float, float]) -> str:
    """What a person would call a patch: red, green, blue, grey, magenta (or "other")."""
    r, g, b = rgb
    if max(rgb) - min(rgb) < 12:
        return "grey"
    if min(r, b) > g + 80:
        return "magenta"
    for name, channel in (("red", r), ("green", g), ("blue", b)):
        if channel > max(rgb[i] for i in range(3) if rgb[i] != channel) + 80:
            return name
    return "other"


def quadrants(image: Image.Image) -> dict[str, str]:
    """The colour at the middle of each quadrant of an upright photo."""
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    height, width = pixels.shape[:2]

    def at(y: float, x: float) -> str:
        patch = pixels[int(y * height) - 2 : int(y * height) + 2, int(x * width) - 2 : int(x * width) + 2]
        return colour(tuple(patch.reshape(-1, 3).mean(axis=0)))

    return {
        "top_left": at(0.2, 0.2), "top_right": at(0.2, 0.8), "bottom_left": at(0.8, 0.2), "bottom_right": at(0.8, 0.8),
        "centre": at(0.5, 0.5),
    }


UPRIGHT = {"top_left": "red", "top_right": "green", "bottom_left": "blue", "bottom_right": "grey"}


def test_raws_are_recognised_by_their_bytes_not_their_names() -> None:
    assert raw_format(make_dng()) == "DNG"
    assert raw_format(b"FUJIFILMCCD-RAW 0201FF383501") == "RAF"
    assert raw_format(b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01") == "CR3"
    assert raw_format(b"II*\x00\x10\x00\x00\x00CR\x02\x00") == "CR2"
    assert raw_format(b"IIRO\x08\x00\x00\x00") == "ORF"
    assert raw_format(b"IIU\x00\x18\x00\x00\x00") == "RW2"
    # A TIFF is a RAW only if IFD 0 says so (DNGVersion, or a RAW maker's Make): a scan is not one.
    scan = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(scan, "TIFF")
    assert raw_format(scan.getvalue()) is None
    assert raw_format(b"\xff\xd8\xff\xe0") is None and raw_format(b"II*\x00\xff\xff\xff\x7f") is None


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_the_full_decode_is_upright_in_its_colours_with_the_cameras_white_balance(orientation: int) -> None:
    # Stored turned as a camera held that way writes it; the grey patch reads warm on the sensor.
    image = decode_raw(make_dng(96, 64, orientation=orientation, preview=False), max_pixels=MAX_PIXELS)
    assert image.mode == "RGB" and image.size == (96, 64)
    found = quadrants(image)
    assert {k: found[k] for k in UPRIGHT} == UPRIGHT  # grey is grey again: the as-shot white balance
    assert image.info == {}


def test_a_raw_is_developed_wherever_a_photo_is_loaded() -> None:
    image = load_normalised(make_dng(96, 64, orientation=6), max_pixels=MAX_PIXELS)
    assert image.size == (96, 64) and {k: quadrants(image)[k] for k in UPRIGHT} == UPRIGHT


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_the_upload_thumbnail_comes_from_the_embedded_preview_turned_upright(orientation: int) -> None:
    data = make_dng(96, 64, orientation=orientation)
    with opened_raw(data, max_pixels=MAX_PIXELS) as raw:
        check = inspect_raw(raw, max_pixels=MAX_PIXELS)
    assert check.from_preview and (check.width, check.height) == (96, 64) and check.thumbnail.size == (96, 64)
    # The magenta mark is only in the preview: the sensor data was not developed for the thumbnail.
    assert quadrants(check.thumbnail) == {**UPRIGHT, "centre": "magenta"}


def test_without_a_preview_the_thumbnail_is_a_half_size_decode() -> None:
    with opened_raw(make_dng(1200, 800, orientation=8, preview=False), max_pixels=MAX_PIXELS) as raw:
        check = inspect_raw(raw, max_pixels=MAX_PIXELS)
    assert not check.from_preview and (check.width, check.height) == (1200, 800)
    assert check.thumbnail.size == (512, 341)
    found = quadrants(check.thumbnail)
    assert {k: found[k] for k in UPRIGHT} == UPRIGHT and found["centre"] != "magenta"


def test_a_preview_smaller_than_the_thumbnail_is_not_used() -> None:
    with opened_raw(make_dng(1200, 800, preview_edge=160), max_pixels=MAX_PIXELS) as raw:
        check = inspect_raw(raw, max_pixels=MAX_PIXELS)
    assert not check.from_preview and check.thumbnail.size == (512, 341)
    with opened_raw(make_dng(1200, 800, preview_edge=1024), max_pixels=MAX_PIXELS) as raw:
        check = inspect_raw(raw, max_pixels=MAX_PIXELS)
    assert check.from_preview and check.thumbnail.width == 512 and check.thumbnail.height in (341, 342)


def test_raws_that_libraw_cannot_read_are_refused_with_the_reason() -> None:
    data = make_dng(96, 64)
    broken = {
        "cut off": data[: len(data) - 500],
        "no sensor data": data[:300] + bytes(len(data) - 300),
    }
    for name, damaged in broken.items():
        with pytest.raises(ImageRejected) as refused:
            with opened_raw(damaged, max_pixels=MAX_PIXELS) as raw:
                inspect_raw(raw, max_pixels=MAX_PIXELS)
        assert refused.value.reason == UNREADABLE_RAW, name


def test_a_raw_with_more_pixels_than_allowed_is_refused_before_decoding() -> None:
    with pytest.raises(ImageRejected) as refused:
        decode_raw(make_dng(96, 64), max_pixels=96 * 64 - 1)
    assert refused.value.code == "too_many_pixels"


def test_the_worker_holds_a_raws_development_in_its_pixel_budget(settings: Settings) -> None:
    """A development holds far more memory than the photo it makes: so does its share of the budget."""
    storage = LocalStorage.from_settings(settings)
    shares = {}
    for content_type, data in (("image/x-adobe-dng", make_dng(480, 320, orientation=6)), ("image/png", _png(480, 320))):
        key = f"{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4()}/original"
        storage.put_bytes(key, data, content_type=content_type)
        original = Asset(id=uuid.uuid4(), shoot_id=uuid.uuid4(), user_id=uuid.uuid4(), kind="original", storage_key=key,
                         filename="x", content_type=content_type, width=480, height=320, status="ready")
        limits = ImageLimits(cpu=threading.BoundedSemaphore(1), budget=PixelBudget(100), max_pixels=MAX_PIXELS)
        job = Job(user_id=uuid.uuid4(), asset_id=original.id, preset="enhance", params={}, engine="test", prompt_text="")
        rendered = render(job, original, storage=storage, engine=NoopEngine(), limits=limits)
        assert (rendered.width, rendered.height) == (480, 320)
        shares[content_type] = limits.budget.peak
    assert shares["image/png"] == pytest.approx(0.1536)
    assert shares["image/x-adobe-dng"] == pytest.approx(0.1536 * DECODE_SHARE) and DECODE_SHARE >= 3


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()
