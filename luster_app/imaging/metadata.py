"""Reading what metadata a JPEG carries, to prove no location leaves in an output."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from PIL import Image

GPS_IFD = 0x8825
SOS, EOI = 0xDA, 0xD9


@dataclass(frozen=True)
class MetadataReport:
    exif_gps: bool
    xmp: bool
    iptc: bool
    exif_orientation: int | None


def _segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment before the image data."""
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker in (SOS, EOI):
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        segments.append((marker, jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return segments


def metadata_report(jpeg: bytes) -> MetadataReport:
    """What the JPEG's APP segments say: GPS in EXIF, any XMP, any IPTC, the orientation tag."""
    exif_gps = xmp = iptc = False
    orientation = None
    for marker, payload in _segments(jpeg):
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            exif = Image.Exif()
            exif.load(payload[6:])
            exif_gps = exif_gps or GPS_IFD in exif or bool(exif.get_ifd(GPS_IFD))
            orientation = exif.get(0x0112, orientation)
        elif marker == 0xE1 and b"http://ns.adobe.com/xap/1.0/" in payload[:40]:
            xmp = True
        elif marker == 0xED:
            iptc = True
    return MetadataReport(exif_gps=exif_gps, xmp=xmp, iptc=iptc, exif_orientation=orientation)


def has_gps(jpeg: bytes) -> bool:
    """True if the JPEG could reveal a location: GPS in EXIF, or any XMP or IPTC block."""
    report = metadata_report(jpeg)
    return report.exif_gps or report.xmp or report.iptc


