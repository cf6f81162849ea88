"""Camera RAW: the upload check (LibRaw opens the file and unpacks its sensor data; the thumbnail
comes from the embedded preview) against the worker's full development of the same file, on a
24-megapixel DNG. Goal (issue 22): the upload thumbnail within 0.2× of the full decode."""

from __future__ import annotations

from typing import Any

from bench.measure import can_measure_memory, compare, mib, ms
from bench.photos import camera_dng
from luster_app.config import Settings
from luster_app.imaging.encode import THUMB_QUALITY, encode_jpeg
from luster_app.imaging.raw import decode_raw, inspect_raw, opened_raw
from worker.pipeline import return_photo_memory_to_the_os

GOAL = 0.2
MAX_PIXELS = Settings(_env_file=None).max_image_pixels


def upload_check(data: bytes) -> bytes:
    """What completing an upload does with a RAW (services/uploads.py `_decode_raw`)."""
    with opened_raw(data, max_pixels=MAX_PIXELS) as raw:
        check = inspect_raw(raw, max_pixels=MAX_PIXELS)
    return encode_jpeg(check.thumbnail, quality=THUMB_QUALITY)


def full_decode(data: bytes) -> Any:
    return decode_raw(data, max_pixels=MAX_PIXELS)


def run(env: Any) -> Any:
    from bench.common import Section

    return_photo_memory_to_the_os()  # as the worker does: freed photos leave the process
    repeat = 2 if env.quick else 3
    memory = can_measure_memory()
    rows = []
    for label, data in (("with its embedded preview", camera_dng()), ("without a preview", camera_dng(preview=False))):
        pair = compare(lambda: upload_check(data), lambda: full_decode(data), repeat=repeat, memory=memory)  # noqa: B023
        goal = f"{'met' if pair.ratio <= GOAL else 'NOT met'} (≤ {GOAL}×)" if "embedded" in label else ""
        rows.append((f"24 MP DNG {label}", ms(pair.ours_s), ms(pair.bare_s), f"{pair.ratio:.2f}×",
                     mib(pair.ours_mib), mib(pair.bare_mib), goal))
    return Section(
        title="Camera RAW: upload thumbnail against full decode",
        header=("file", "upload check + thumbnail (ms)", "full decode (ms)", "ratio", "check peak (MiB)",
                "decode peak (MiB)", "goal"),
        rows=rows,
        notes=[
            f"Best of {repeat} runs each, alternating. The upload check is LibRaw's open and unpack (which proves",
            "the sensor data is all there) and the thumbnail from the embedded JPEG preview (decoded in draft",
            "mode), or without one from a half-size development; the full decode is the worker's: LibRaw's AHD",
            "demosaic, camera white balance, sRGB, 8 bits, turned upright. The DNG is uncompressed (made here from",
            "the camera JPEG's pixels, mosaicked): a compressed RAW (CR3, NEF, ARW) adds its decompression to",
            "both sides (the check unpacks too), so its ratio is higher than here. Peak = resident high-water",
            "mark above the resident size when the step began.",
        ],
    )
