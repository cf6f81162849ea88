"""An original photo as the public may see it: the photographer's own pixels, with nothing that
tells where it was taken (AB 723 disclosure pages).

A JPEG is rewritten without decoding: its compressed image data, quantisation and Huffman tables
and colour profile are copied byte for byte, so it decodes to exactly the original's pixels;
EXIF (GPS, camera serials, the embedded thumbnail), XMP, IPTC, comments, maker segments and any
images appended after it (the MPF depth maps and previews of phone photos, each with its own EXIF)
are left out. Only the orientation survives, as a one-tag EXIF block, so the photo still shows upright.
Other formats are decoded, turned upright and written again, losslessly for PNG and WebP.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

from luster_app.imaging.decode import (
    ImageRejected, _orientation, _upright, load_normalised, normalise, open_image, sniff_format,
)
from luster_app.imaging.encode import encode_jpeg
from luster_app.imaging.raw import raw_format

ORIENTATION_TAG = 0x0112
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
APP0, APP1, APP2, APP14 = 0xE0, 0xE1, 0xE2, 0xEE
ORIGINAL_QUALITY = 95


def _keep(marker: int, payload: bytes) -> bool:
    """Segments a decoder needs (tables, frame, scans), JFIF, the ICC profile and Adobe's colour
    transform flag; never EXIF, XMP, IPTC, MPF, comments or vendor segments."""
    if 0xE0 <= marker <= 0xEF:  # APPn
        return (
            (marker == APP0 and payload.startswith(b"JFIF\x00"))
            or (marker == APP2 and payload.startswith(b"ICC_PROFILE\x00"))
            or (marker == APP14 and payload.startswith(b"Adobe"))
        )
    return marker != 0xFE  # COM


def _orientation_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    payload = exif.tobytes()  # "Exif\0\0" + TIFF
    return b"\xff" + bytes([APP1]) + struct.pack(">H", len(payload) + 2) + payload


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at `pos` ends: the next marker that is not a stuffed
    0xFF00, a restart marker or a fill byte."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise ImageRejected("The file is truncated or damaged.")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = found + 1 if following == 0xFF else found + 2
            continue
        return found


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG's first image, byte for byte, with every metadata segment removed but the
    orientation (kept as a one-tag EXIF block when the photo is not stored upright)."""
    if data[:2] != b"\xff\xd8":
        raise ImageRejected("Not a JPEG.")
    out = [b"\xff\xd8"]
    insert_at = 1  # the orientation block goes after SOI, or after JFIF when there is one
    orientation = 1
    pos = 2
    while True:
        if pos >= len(data) or data[pos] != 0xFF:
            raise ImageRejected("The file is truncated or damaged.")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data):
            raise ImageRejected("The file is truncated or damaged.")
        marker = data[pos]
        pos += 1
        if marker == EOI:
            out.append(b"\xff\xd9")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            out.append(bytes([0xFF, marker]))
            continue
        if pos + 2 > len(data):
            raise ImageRejected("The file is truncated or damaged.")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        end = pos + length
        if length < 2 or end > len(data):
            raise ImageRejected("The file is truncated or damaged.")
        payload = data[pos + 2 : end]
        if marker == APP1 and payload.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(payload[6:]) or orientation
        if _keep(marker, payload):
            out.append(b"\xff" + bytes([marker]) + data[pos:end])
            if marker == APP0 and insert_at == 1 and len(out) == 2:
                insert_at = 2
        pos = end
        if marker == SOS:
            scan_end = _scan_end(data, pos)
            out.append(data[pos:scan_end])
            pos = scan_end
    # Whatever follows the first image's EOI (MPF previews, depth maps, trailers) stays behind.
    if orientation != 1:
        out.insert(insert_at, _orientation_exif(orientation))
    return b"".join(out)


def _exif_orientation(tiff: bytes) -> int | None:
    try:
        exif = Image.Exif()
        exif.load(tiff)
        value = exif.get(ORIENTATION_TAG)
    except Exception:  # noqa: BLE001  (a malformed EXIF block only loses the orientation)
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def unlocated_original(data: bytes, *, max_pixels: int) -> tuple[bytes, str]:
    """The original as the public may download it, and its content type: see the module's docstring."""
    image_format = sniff_format(data[:32])
    if image_format is None and raw_format(data):  # a camera RAW: developed as the worker does, no metadata
        return encode_jpeg(load_normalised(data, max_pixels=max_pixels), quality=ORIGINAL_QUALITY), "image/jpeg"
    if image_format == "JPEG":
        open_image(data, max_pixels=max_pixels)  # the same bomb limits as everywhere else
        return strip_jpeg(data), "image/jpeg"
    image = open_image(data, max_pixels=max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("The file is truncated or damaged.") from exc
    if image_format == "HEIF":  # no browser but Safari shows HEIC: a high-quality JPEG of it
        return encode_jpeg(normalise(image), quality=ORIGINAL_QUALITY), "image/jpeg"
    icc = image.info.get("icc_profile")
    upright = _upright(image) if _orientation(image) != 1 else image
    if upright.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "P"):
        upright = upright.convert("RGBA" if "A" in upright.mode else "RGB")
    buffer = io.BytesIO()
    upright.save(buffer, "PNG", icc_profile=icc) if icc else upright.save(buffer, "PNG")
    return buffer.getvalue(), "image/png"
