"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2) through LibRaw, by way of `rawpy`.

LibRaw, the maintained library that grew out of dcraw, knows the sensor layout, black and white
levels and colour matrix of each camera, so Luster keeps no camera database of its own. The
type is decided by the file's own bytes (magic numbers, the ISO box brand, the TIFF header's
maker), then LibRaw must open it and unpack its sensor data; a name or a declared type decides
nothing.

Two reads, each as cheap as its purpose allows:
- `inspect_raw` (upload check, on a file `opened_raw`): unpack (proves the sensor data is all there), and a
  thumbnail from the camera's embedded preview, or from a half-size decode when it has none
  large enough.
- `decode_raw` (worker): the full-resolution photo: camera white balance, sRGB primaries and
  tone curve, 8 bits, upright from the RAW's own orientation, no metadata.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from luster_app.imaging.decode import ImageRejected, _to_srgb

RAW_FORMATS = ("DNG", "CR2", "CR3", "NEF", "ARW", "RAF", "ORF", "RW2")
RAW_CONTENT_TYPES = {
    "DNG": "image/x-adobe-dng",
    "CR2": "image/x-canon-cr2",
    "CR3": "image/x-canon-cr3",
    "NEF": "image/x-nikon-nef",
    "ARW": "image/x-sony-arw",
    "RAF": "image/x-fuji-raf",
    "ORF": "image/x-olympus-orf",
    "RW2": "image/x-panasonic-rw2",
}
UNREADABLE_RAW = "The camera RAW file could not be read (it is damaged, incomplete or from an unsupported camera)."
DNG_VERSION, MAKE = 50706, 271
TIFF_MAKERS = {b"NIKON": "NEF", b"SONY": "ARW"}  # TIFF-based RAWs named by IFD 0's Make (DNGs by their version tag)
# The pixel budgets count megapixels of a decoded photo as Pillow holds it (4 bytes a pixel).
# A full decode holds the sensor data (2 bytes a pixel), LibRaw's four-channel 16-bit image (8)
# and the 8-bit result (3): measured on a 24-megapixel DNG, 3.2 times a 24-megapixel JPEG's peak.
DECODE_SHARE = 3.25
# An upload check holds the sensor data, and without a usable preview a half-size decode: up to
# 1.4 times (0.7 with one; docs/BENCHMARKS.md).
CHECK_SHARE = 1.5
# LibRaw's `flip` (bit 0: mirror left-right, bit 1: top-bottom, bit 2: transpose) as Pillow steps.
FLIPS = {
    1: Image.Transpose.FLIP_LEFT_RIGHT,
    2: Image.Transpose.FLIP_TOP_BOTTOM,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.TRANSPOSE,
    5: Image.Transpose.ROTATE_90,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
}
SRGB_GAMMA = (2.4, 12.92)  # LibRaw's default is BT.709's curve; sRGB's is this one
PREVIEW_ASPECT_TOLERANCE = 0.05


def decode_share(content_type: str | None) -> float:
    """How many times its own pixels a photo of `content_type` holds while decoded: `DECODE_SHARE`
    for a camera RAW, 1 for the rest."""
    return DECODE_SHARE if content_type in RAW_CONTENT_TYPES.values() else 1.0


def decoded_megapixels(width: int | None, height: int | None, content_type: str | None, *, unknown: float) -> float:
    """The megapixels a photo holds while decoded (`decode_share` times its own); `unknown` where
    its size was never recorded."""
    size = width * height / 1_000_000 if width and height else unknown
    return size * decode_share(content_type)


def _tiff_make_and_dng(data: bytes) -> tuple[bytes, bool]:
    """IFD 0's Make and whether it carries a DNGVersion tag."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(f"{order}I", data, 4)
        (count,) = struct.unpack_from(f"{order}H", data, offset)
        make, dng = b"", False
        for index in range(min(count, 1000)):
            tag, kind, number, value = struct.unpack_from(f"{order}HHII", data, offset + 2 + 12 * index)
            if tag == DNG_VERSION:
                dng = True
            elif tag == MAKE and kind == 2:
                start = offset + 2 + 12 * index + 8 if number <= 4 else value
                make = data[start : start + min(number, 64)].split(b"\x00", 1)[0].strip()
    except struct.error:
        return b"", False  # no readable IFD 0: no camera RAW either
    return make, dng


def raw_format(data: bytes) -> str | None:
    """Which camera RAW format the bytes are, from their structure, or None if they are none of them."""
    if data.startswith(b"FUJIFILMCCD-RAW "):
        return "RAF"
    if data[4:8] == b"ftyp" and data[8:12] == b"crx ":
        return "CR3"
    if data[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if data[:4] == b"IIU\x00":
        return "RW2"
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    if data[8:10] == b"CR":
        return "CR2"
    make, dng = _tiff_make_and_dng(data)
    if dng:
        return "DNG"
    return next((name for maker, name in TIFF_MAKERS.items() if make.upper().startswith(maker)), None)


@dataclass(frozen=True)
class RawCheck:
    """What an upload check learns from a RAW file: its upright size and a thumbnail."""

    width: int
    height: int
    thumbnail: Image.Image  # upright, sRGB, metadata-free, at most `long_edge` on its long side
    from_preview: bool


@contextmanager
def opened_raw(data: bytes, *, max_pixels: int) -> Iterator[Any]:
    """The file opened by LibRaw (headers parsed, nothing decoded), closed after the block;
    ImageRejected if LibRaw cannot read it or it has more than `max_pixels`."""
    import rawpy

    try:
        raw = rawpy.imread(io.BytesIO(data))  # shares `data`: the bytes are not copied
    except (rawpy.LibRawError, ValueError) as exc:
        raise ImageRejected(UNREADABLE_RAW) from exc
    try:
        sizes = raw.sizes
        width, height = upright_size(raw)
        if width <= 0 or height <= 0 or max(width * height, sizes.raw_width * sizes.raw_height) > max_pixels:
            raise ImageRejected(
                f"The image is {width}×{height} pixels; the most we accept is {max_pixels // 1_000_000} megapixels.",
                code="too_many_pixels",
            )
        yield raw
    finally:
        raw.close()


def megapixels(raw: Any) -> float:
    """The sensor's size in megapixels: what the budget shares (`CHECK_SHARE`, `DECODE_SHARE`) scale."""
    return raw.sizes.raw_width * raw.sizes.raw_height / 1e6


def upright_size(raw: Any) -> tuple[int, int]:
    sizes = raw.sizes
    return (sizes.height, sizes.width) if sizes.flip & 4 else (sizes.width, sizes.height)


def _upright(image: Image.Image, flip: int) -> Image.Image:
    step = FLIPS.get(flip & 7)
    return image if step is None else image.transpose(step)


def _preview(raw: Any, *, long_edge: int, max_pixels: int) -> Image.Image | None:
    """The embedded preview turned upright, if the camera wrote one the thumbnail can come from:
    as large as the thumbnail (or the photo, if smaller) and of the photo's shape. It is stored
    as the sensor was, so the RAW's orientation turns it (never the preview's own EXIF)."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            image = Image.open(io.BytesIO(thumb.data), formats=["JPEG"])
            if image.width * image.height > max_pixels:
                return None
            image.draft("RGB", (long_edge, long_edge))  # whole DCT scalings only: never below `long_edge`
            image.load()
        except Exception:  # noqa: BLE001  (a broken preview is only a reason to decode the sensor data)
            return None
    elif thumb.data.ndim == 3 and thumb.data.shape[2] >= 3 and thumb.data.dtype == np.uint8:  # an RGB bitmap
        image = Image.fromarray(np.ascontiguousarray(thumb.data[..., :3]))
    else:
        return None
    sizes = raw.sizes
    needed = min(long_edge, max(sizes.width, sizes.height))
    aspect = sizes.width / sizes.height
    if max(image.size) < needed or abs(image.width / image.height - aspect) > PREVIEW_ASPECT_TOLERANCE * aspect:
        return None
    image.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    image = _to_srgb(image)  # honours a preview's own profile (Adobe RGB on some cameras)
    image.info = {}
    return _upright(image, sizes.flip)


def _develop(raw: Any, *, half_size: bool) -> np.ndarray:
    """LibRaw's development: camera white balance, sRGB, 8 bits, turned by the RAW's own orientation."""
    import rawpy

    try:
        return raw.postprocess(
            use_camera_wb=True, half_size=half_size, output_bps=8, output_color=rawpy.ColorSpace.sRGB, gamma=SRGB_GAMMA
        )
    except (rawpy.LibRawError, ValueError) as exc:
        raise ImageRejected(UNREADABLE_RAW) from exc


def inspect_raw(raw: Any, *, max_pixels: int, long_edge: int = 512) -> RawCheck:
    """Check an opened RAW (its sensor data must unpack) and make its thumbnail, from the embedded
    preview when there is a usable one, else from a half-size decode; ImageRejected if unreadable."""
    import rawpy

    try:
        raw.unpack()
    except (rawpy.LibRawError, ValueError) as exc:
        raise ImageRejected(UNREADABLE_RAW) from exc
    width, height = upright_size(raw)
    thumbnail = _preview(raw, long_edge=long_edge, max_pixels=max_pixels)
    if thumbnail is not None:
        return RawCheck(width, height, thumbnail, from_preview=True)
    thumbnail = Image.fromarray(_develop(raw, half_size=True))
    thumbnail.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    return RawCheck(width, height, thumbnail, from_preview=False)


def decode_raw(data: bytes, *, max_pixels: int) -> Image.Image:
    """The full-resolution photo developed from the sensor data: upright, sRGB, no metadata."""
    with opened_raw(data, max_pixels=max_pixels) as raw:
        rgb = _develop(raw, half_size=False)
    return Image.fromarray(rgb)  # after LibRaw's buffers are freed
