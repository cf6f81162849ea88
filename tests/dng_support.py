"""Real DNG files made in the tests: a known scene mosaicked through an RGGB Bayer filter and
written by hand as TIFF tags (DNG 1.4), so a test knows what every decoded pixel should be.

The camera's colour space is linear sRGB (its ColorMatrix1 is XYZ → linear sRGB under D65), and
the scene was lit by a warm light, recorded as the shot's AsShotNeutral: a grey surface reads
`neutral` on the sensor. Decoding with the camera's white balance must therefore turn it grey
again, and the red patch red. No package writes DNGs from a mosaic without a camera profile of
its own (pidng's last release is from 2022), and the format is a few tags on a TIFF.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL = 1, 2, 3, 4, 5, 7, 10
SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8}
XYZ_TO_LINEAR_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
WARM_LIGHT = (1.0, 0.75, 0.45)  # what a grey card reads per channel under the shot's light
WHITE_LEVEL = 4095  # a 12-bit sensor

# The upright scene, in quadrants: what a decode must show, whatever the file's orientation.
RED, GREEN, BLUE, GREY = (0.75, 0.06, 0.05), (0.08, 0.6, 0.1), (0.05, 0.08, 0.7), (0.3, 0.3, 0.3)
QUADRANTS = {"top_left": RED, "top_right": GREEN, "bottom_left": BLUE, "bottom_right": GREY}
MARK = (0.9, 0.1, 0.9)  # magenta: only in the embedded preview, where the scene's centre is


def scene(width: int, height: int) -> np.ndarray:
    """The upright scene as linear RGB reflectances (height × width × 3)."""
    rgb = np.empty((height, width, 3))
    top, left = slice(0, height // 2), slice(0, width // 2)
    bottom, right = slice(height // 2, None), slice(width // 2, None)
    rgb[top, left], rgb[top, right], rgb[bottom, left], rgb[bottom, right] = RED, GREEN, BLUE, GREY
    return rgb


def stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The array as a camera held that way writes it: `orientation` (EXIF) turns it upright."""
    return {1: upright, 3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}[orientation]


def mosaic(linear: np.ndarray) -> np.ndarray:
    """The sensor's RGGB readout of a linear camera-RGB image, 12-bit."""
    sensor = np.clip(linear * np.asarray(WARM_LIGHT, linear.dtype), 0, 1) * WHITE_LEVEL
    bayer = np.empty(sensor.shape[:2], sensor.dtype)
    bayer[0::2, 0::2] = sensor[0::2, 0::2, 0]
    bayer[0::2, 1::2] = sensor[0::2, 1::2, 1]
    bayer[1::2, 0::2] = sensor[1::2, 0::2, 1]
    bayer[1::2, 1::2] = sensor[1::2, 1::2, 2]
    return bayer.round().astype("<u2")


def preview_jpeg(upright: np.ndarray, orientation: int, long_edge: int | None = None) -> bytes:
    """The camera's embedded preview: the scene with a magenta mark in its centre, stored like the
    mosaic, `long_edge` pixels on its long side (None: the photo's own size)."""
    marked = upright.copy()
    height, width = marked.shape[:2]
    marked[height * 3 // 8 : height * 5 // 8, width * 3 // 8 : width * 5 // 8] = MARK
    srgb = np.where(marked <= 0.0031308, marked * 12.92, 1.055 * np.power(marked, 1 / 2.4) - 0.055)
    image = Image.fromarray((np.ascontiguousarray(stored(srgb, orientation)) * 255).round().astype(np.uint8))
    if long_edge:
        image.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _rationals(values: tuple[float, ...], scale: int = 10000) -> list[int]:
    return [part for value in values for part in (round(value * scale), scale)]


class _Ifd:
    def __init__(self) -> None:
        self.entries: dict[int, tuple[int, list]] = {}

    def set(self, tag: int, kind: int, values: list | bytes | str) -> None:
        if isinstance(values, str):
            values = values.encode() + b"\x00"
        self.entries[tag] = (kind, list(values))

    def _payload(self, kind: int, values: list) -> bytes:
        if kind in (BYTE, UNDEFINED, ASCII):
            return bytes(values)
        code = {SHORT: "H", LONG: "I", RATIONAL: "I", SRATIONAL: "i"}[kind]
        return struct.pack(f"<{len(values)}{code}", *values)

    def size(self) -> int:
        spill = sum(-(-len(self._payload(k, v)) // 2) * 2 for k, v in self.entries.values() if len(self._payload(k, v)) > 4)
        return 2 + 12 * len(self.entries) + 4 + spill

    def pack(self, offset: int) -> bytes:
        """The IFD written at `offset`, its long values right after it; no next IFD."""
        head = struct.pack("<H", len(self.entries))
        spill = b""
        spill_at = offset + 2 + 12 * len(self.entries) + 4
        for tag in sorted(self.entries):
            kind, values = self.entries[tag]
            payload = self._payload(kind, values)
            count = len(values) // 2 if kind in (RATIONAL, SRATIONAL) else len(values)
            if len(payload) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\x00")
            else:
                head += struct.pack("<HHII", tag, kind, count, spill_at + len(spill))
                spill += payload + b"\x00" * (len(payload) % 2)
        return head + struct.pack("<I", 0) + spill


def make_dng(
    width: int = 96,
    height: int = 64,
    *,
    orientation: int = 1,
    preview: bool = True,
    preview_edge: int | None = None,
    gps: bool = False,
    make: str = "Luster",
    model: str = "Test Camera",
) -> bytes:
    """A DNG of `scene(width, height)` (upright size), stored as a camera turned by `orientation`
    writes it, with a JPEG preview (IFD 0) of the marked scene when `preview` (`preview_edge` on its long
    side, or the photo's size), and a GPS IFD naming a place when `gps`."""
    upright = scene(width, height)
    bayer = mosaic(np.ascontiguousarray(stored(upright, orientation)))
    jpeg = preview_jpeg(upright, orientation, preview_edge) if preview else None
    return write_dng(bayer, orientation=orientation, preview=jpeg, gps=gps, make=make, model=model)


def write_dng(
    bayer: np.ndarray, *, orientation: int = 1, preview: bytes | None = None, gps: bool = False,
    make: str = "Luster", model: str = "Test Camera",
) -> bytes:
    """A DNG of an RGGB mosaic (`mosaic`), with `preview` (a JPEG, stored like the mosaic) in IFD 0."""
    raw_height, raw_width = bayer.shape
    jpeg = preview or b""
    raw = _Ifd()
    raw.set(254, LONG, [0])  # NewSubFileType: the main image
    raw.set(256, LONG, [raw_width])
    raw.set(257, LONG, [raw_height])
    raw.set(258, SHORT, [16])
    raw.set(259, SHORT, [1])  # uncompressed
    raw.set(262, SHORT, [32803])  # CFA
    raw.set(273, LONG, [0])  # StripOffsets, set below
    raw.set(277, SHORT, [1])
    raw.set(278, LONG, [raw_height])
    raw.set(279, LONG, [bayer.nbytes])
    raw.set(284, SHORT, [1])
    raw.set(33421, SHORT, [2, 2])  # CFARepeatPatternDim
    raw.set(33422, BYTE, [0, 1, 1, 2])  # CFAPattern: RGGB
    raw.set(50714, LONG, [0])  # BlackLevel
    raw.set(50717, LONG, [WHITE_LEVEL])

    main = _Ifd()  # IFD 0: the preview when there is one, else the raw image itself
    if jpeg:
        preview_image = Image.open(io.BytesIO(jpeg))
        main.set(254, LONG, [1])  # a reduced-resolution copy
        main.set(256, LONG, [preview_image.width])
        main.set(257, LONG, [preview_image.height])
        main.set(258, SHORT, [8, 8, 8])
        main.set(259, SHORT, [7])  # JPEG
        main.set(262, SHORT, [6])  # YCbCr
        main.set(273, LONG, [0])
        main.set(277, SHORT, [3])
        main.set(278, LONG, [preview_image.height])
        main.set(279, LONG, [len(jpeg)])
        main.set(284, SHORT, [1])
        main.set(330, LONG, [0])  # SubIFDs: the raw image, set below
    else:
        main.entries.update(raw.entries)
    main.set(271, ASCII, make)
    main.set(272, ASCII, model)
    main.set(274, SHORT, [orientation])
    main.set(50706, BYTE, [1, 4, 0, 0])  # DNGVersion
    main.set(50707, BYTE, [1, 1, 0, 0])
    main.set(50708, ASCII, f"{make} {model}")
    main.set(50721, SRATIONAL, _rationals(tuple(v for row in XYZ_TO_LINEAR_SRGB for v in row)))  # ColorMatrix1
    main.set(50728, RATIONAL, _rationals(WARM_LIGHT))  # AsShotNeutral
    main.set(50778, SHORT, [21])  # CalibrationIlluminant1: D65
    gps_ifd = _Ifd()
    if gps:
        main.set(34853, LONG, [0])  # GPSInfo, set below
        gps_ifd.set(0, BYTE, [2, 3, 0, 0])
        gps_ifd.set(1, ASCII, "N")
        gps_ifd.set(2, RATIONAL, [43, 1, 28, 1, 1234, 100])
        gps_ifd.set(3, ASCII, "E")
        gps_ifd.set(4, RATIONAL, [11, 1, 52, 1, 5678, 100])

    # Layout: header, IFD 0, raw IFD (with a preview), GPS IFD, preview JPEG, mosaic.
    main_at = 8
    raw_at = main_at + main.size()
    gps_at = raw_at + (raw.size() if jpeg else 0)
    preview_at = gps_at + (gps_ifd.size() if gps else 0)
    mosaic_at = preview_at + len(jpeg) + len(jpeg) % 2
    if jpeg:
        main.set(273, LONG, [preview_at])
        main.set(330, LONG, [raw_at])
        raw.set(273, LONG, [mosaic_at])
    else:
        main.set(273, LONG, [mosaic_at])
    if gps:
        main.set(34853, LONG, [gps_at])
    out = b"II*\x00" + struct.pack("<I", main_at) + main.pack(main_at)
    if jpeg:
        out += raw.pack(raw_at)
    if gps:
        out += gps_ifd.pack(gps_at)
    out += jpeg + b"\x00" * (len(jpeg) % 2)
    assert len(out) == mosaic_at
    return out + bayer.tobytes()
