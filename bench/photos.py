"""Benchmark photos made from the real test photos: a 24-megapixel camera JPEG, a 12-megapixel
iPhone HEIC (Display P3 profile kept) and a 24-megapixel camera DNG, as a photographer would upload them."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

from luster_app.migrations import ROOT

PHOTOS = ROOT / "tests" / "data" / "photos"
CAMERA_SIZE = (6000, 4000)  # 24 megapixels: a full-frame camera
IPHONE_SIZE = (3024, 4032)  # 12 megapixels: an iPhone's main camera, portrait
ORIENTATION_TAG = 0x0112


def _with_sensor_noise(image: Image.Image, *, seed: int, amplitude: int) -> Image.Image:
    """Fine noise like a sensor's: an upscaled photo is smoother than a real one and would decode faster."""
    noise = np.random.default_rng(seed).integers(-amplitude, amplitude + 1, size=(image.height, image.width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


@functools.cache
def camera_jpeg() -> bytes:
    """A 24-megapixel quality-92 JPEG with the source's EXIF (GPS included), shot in portrait:
    stored landscape with EXIF orientation 6, as cameras write it."""
    source = Image.open(PHOTOS / "gps" / "DSCN0010.jpg")
    exif = source.getexif()
    exif[ORIENTATION_TAG] = 6
    pixels = _with_sensor_noise(source.convert("RGB").resize(CAMERA_SIZE, Image.Resampling.LANCZOS), seed=24, amplitude=6)
    buffer = io.BytesIO()
    pixels.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


@functools.cache
def iphone_heic() -> bytes:
    """A 12-megapixel HEIC made from a real iPhone photo, keeping its Display P3 ICC profile and EXIF."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    source = Image.open(PHOTOS / "heic" / "IMG_5195.HEIC")
    icc = source.info["icc_profile"]
    exif = source.getexif()
    exif[ORIENTATION_TAG] = 1  # libheif has applied the stored rotation to these pixels
    pixels = _with_sensor_noise(source.convert("RGB").resize(IPHONE_SIZE, Image.Resampling.LANCZOS), seed=12, amplitude=3)
    buffer = io.BytesIO()
    pixels.save(buffer, "HEIF", quality=80, icc_profile=icc, exif=exif.tobytes())
    return buffer.getvalue()


@functools.cache
def camera_dng(*, preview: bool = True) -> bytes:
    """A 24-megapixel DNG of the camera JPEG's scene: its pixels linearised and mosaicked through an
    RGGB filter (12-bit, uncompressed), stored landscape with orientation 6 and, when `preview`,
    the full-size JPEG a Canon or Nikon embeds (quality 92, no EXIF) as its preview."""
    from tests.dng_support import mosaic, write_dng

    pixels = Image.open(io.BytesIO(camera_jpeg()))
    pixels.load()
    srgb = np.asarray(pixels, dtype=np.float32) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, np.power((srgb + 0.055) / 1.055, 2.4, dtype=np.float32))
    del srgb
    jpeg = io.BytesIO()
    pixels.save(jpeg, "JPEG", quality=92)
    return write_dng(mosaic(linear), orientation=6, preview=jpeg.getvalue() if preview else None)
