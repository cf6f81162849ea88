"""Decoding with an allow-list of formats, bomb limits before decoding, orientation and sRGB."""

from __future__ import annotations

import functools
import io
import struct
from typing import BinaryIO

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
ORIENTATION_TAG = 0x0112
NOT_A_PHOTO = "Not a photo: upload JPEG, HEIC, PNG, WebP or camera RAW files."
# Orientations 5-8 store the picture rotated a quarter turn: width and height swap.
QUARTER_TURN_ORIENTATIONS = {5, 6, 7, 8}


class ImageRejected(Exception):
    """An upload that is not a usable photo; `reason` is shown to the photographer, `code` (a
    few fixed words) is what metrics count it by."""

    def __init__(self, reason: str, *, code: str = "unreadable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@functools.cache
def _register_heif() -> None:
    # Registered on first use, not at import time.
    import pillow_heif

    pillow_heif.register_heif_opener()


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def sniff_format(head: bytes) -> str | None:
    """The image format from the first bytes (12 are enough), or None if not an allowed one."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "HEIF"
    return None


def _as_stream(source: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source


def _heif_boxes_complete(stream: BinaryIO) -> bool:
    """True if every top-level box of a HEIF file ends within the file.

    libheif decodes a grid photo whose tile data was cut off without an error, filling the
    missing tiles with green; the container's own box sizes tell that bytes are missing.
    """
    end = stream.seek(0, io.SEEK_END)
    position = 0
    try:
        while position < end:
            stream.seek(position)
            header = stream.read(16)
            if len(header) < 8:
                return False
            size, header_size = struct.unpack(">I", header[:4])[0], 8
            if size == 1:  # a 64-bit size follows the type
                if len(header) < 16:
                    return False
                size, header_size = struct.unpack(">Q", header[8:16])[0], 16
            elif size == 0:  # the last box runs to the end of the file
                return True
            if size < header_size or position + size > end:
                return False
            position += size
        return True
    finally:
        stream.seek(0)


def open_image(source: bytes | BinaryIO, *, max_pixels: int) -> Image.Image:
    """Open (not decode) an allowed image, refusing decompression bombs by the header's size."""
    stream = _as_stream(source)
    head = stream.read(32)
    stream.seek(0)
    if not head:
        raise ImageRejected("The file is empty.", code="empty")
    image_format = sniff_format(head)
    if image_format is None:
        raise ImageRejected(NOT_A_PHOTO, code="not_a_photo")
    if image_format == "HEIF":
        if not _heif_boxes_complete(stream):
            raise ImageRejected("The file is truncated or damaged.")
        _register_heif()
    try:
        image = Image.open(stream, formats=[image_format])
    except Image.DecompressionBombError as exc:
        raise ImageRejected("The image has too many pixels to process.", code="too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("The file is damaged or not a readable image.") from exc
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width}×{height} pixels; the most we accept is {max_pixels // 1_000_000} megapixels.",
            code="too_many_pixels",
        )
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (malformed EXIF must not stop a photo)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """Width and height once EXIF orientation is applied, without decoding the pixels."""
    width, height = image.size
    return (height, width) if _orientation(image) in QUARTER_TURN_ORIENTATIONS else (width, height)


def _upright(image: Image.Image) -> Image.Image:
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(_orientation(image))
    return image if method is None else image.transpose(method)  # FLIP_LEFT_RIGHT is 0: test for None


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB pixels in sRGB: convert from an embedded profile (e.g. Display P3), never reinterpret."""
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image_rgb = Image.alpha_composite(background, rgba).convert("RGB")
    elif image.mode == "RGB" or (image.mode == "CMYK" and icc):
        image_rgb = image  # no copy: a 24-megapixel photo is 72 MB
    else:
        image_rgb = image.convert("RGB")
    if icc:
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image_rgb.mode == "RGB" and not image_rgb.readonly:
                # In place: the photo is not held twice while it is converted.
                ImageCms.profileToProfile(
                    image_rgb, source_profile, srgb_profile(),
                    renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, inPlace=True,
                )
                return image_rgb
            return ImageCms.profileToProfile(
                image_rgb, source_profile, srgb_profile(),
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB",
            )
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: treat the pixels as sRGB, as browsers do
    return image_rgb if image_rgb.mode == "RGB" else image_rgb.convert("RGB")


def normalise(image: Image.Image) -> Image.Image:
    """Decode `image`, turn it upright, convert to sRGB RGB, and drop every piece of metadata."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("The file is truncated or damaged.") from exc
    icc = image.info.get("icc_profile")
    upright = _upright(image)
    if icc and "icc_profile" not in upright.info:
        upright.info["icc_profile"] = icc
    result = _to_srgb(upright)
    # A fresh info dict: no EXIF, XMP, IPTC or GPS survives into anything we write.
    result.info = {}
    return result


def load_normalised(source: bytes | BinaryIO, *, max_pixels: int) -> Image.Image:
    """The full-resolution photo: decoded (a camera RAW developed by LibRaw), upright, sRGB, metadata-free."""
    from luster_app.imaging.raw import decode_raw, raw_format  # raw.py builds on this module

    if isinstance(source, (bytes, bytearray)) and raw_format(source):
        return decode_raw(bytes(source), max_pixels=max_pixels)
    return normalise(open_image(source, max_pixels=max_pixels))
