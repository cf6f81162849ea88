"""Writing JPEGs that carry pixels and an sRGB profile, and nothing else."""

from __future__ import annotations

import functools
import io
from typing import BinaryIO

from PIL import Image

from luster_app.imaging.decode import ImageRejected, normalise, open_image, oriented_size, srgb_profile

OUTPUT_QUALITY = 92
THUMB_QUALITY = 85
# Modes Pillow resamples directly; palette and 16-bit images are converted to RGB first.
SHRINK_FIRST_MODES = {"RGB", "RGBA", "L", "LA", "CMYK"}
# Formats that can hand over a smaller picture than the photo (`Image.draft`): JPEG by DCT
# scaling, HEIF its embedded preview (thumbnail item) when that is large enough.
DRAFT_FORMATS = {"JPEG", "HEIF"}


@functools.cache
def srgb_icc_bytes() -> bytes:
    """The sRGB profile every JPEG we write embeds, serialised once: serialising it for each
    encode was about 2% of a worker's CPU a job on small photos."""
    return srgb_profile().tobytes()


def encode_jpeg(image: Image.Image, *, quality: int = OUTPUT_QUALITY) -> bytes:
    """A baseline JPEG of an sRGB image with the sRGB ICC profile and no other metadata."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    # Explicit empty exif/xmp so nothing from image.info can be carried along.
    image.save(buffer, "JPEG", quality=quality, icc_profile=srgb_icc_bytes(), exif=b"", xmp=b"")
    return buffer.getvalue()


def fit_long_edge(image: Image.Image, long_edge: int | None) -> Image.Image:
    """`image` shrunk (never enlarged) so its long edge is at most `long_edge`; None keeps it whole."""
    if long_edge is None or max(image.size) <= long_edge:
        return image
    scale = long_edge / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def make_thumbnail(source: bytes | BinaryIO, *, max_pixels: int, long_edge: int = 512) -> tuple[bytes, int, int]:
    """An upright, metadata-free JPEG thumbnail (long edge `long_edge`) and its width and height.

    Neither a JPEG nor a HEIC is fully decoded when it need not be: JPEGs in draft mode (DCT
    scaling), HEICs from the preview image they embed when it is at least the thumbnail's size
    and a scaled copy of the photo (same crop, rotation and colour profile; pillow-heif checks),
    else from the full decode. The photo is shrunk before it is turned and colour-converted, so
    those steps see only the thumbnail's pixels (on a 12-megapixel Display P3 HEIC the conversion
    was a fifth of the time).
    """
    image = open_image(source, max_pixels=max_pixels)
    if image.format in DRAFT_FORMATS:
        width, height = oriented_size(image)
        scale = long_edge / max(width, height)
        stored_w, stored_h = image.size
        image.draft("RGB", (max(1, int(stored_w * scale)), max(1, int(stored_h * scale))))
    try:
        image.load()
        if image.mode in SHRINK_FIRST_MODES:
            image.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("The file is truncated or damaged.") from exc
    thumb = normalise(image)
    thumb.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)  # the other modes, once in RGB
    return encode_jpeg(thumb, quality=THUMB_QUALITY), thumb.width, thumb.height
