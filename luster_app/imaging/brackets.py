"""Exposure brackets: read a frame's exposure from its EXIF, suggest groups, and merge a group
into one photo.

The image maths is OpenCV's (`AlignMTB`: Ward's median threshold bitmaps, which tolerate a
hand-held shift and any exposure; `MergeMertens`: exposure fusion by contrast, saturation and
well-exposedness weights with multiresolution blending, needing no camera response curve).
Luster's own part is the decisions: which frames form a group, whether they show one scene,
and where the window pull takes the darkest frame's detail.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from PIL import Image

MIN_FRAMES = 2
MAX_FRAMES = 9
NOT_ONE_BRACKET = "These photos do not look like one bracket."
# Capture times of one bracket: the next frame starts within this long after the last one ended.
SUGGEST_GAP_SECONDS = 3.0
# Median threshold bitmaps of neighbouring exposures of one scene disagree on a few per cent of
# their pixels (6% on the test bracket's darkest pair); unrelated scenes on about half.
SCENE_DISAGREEMENT = 0.25
SCENE_CHECK_WIDTH = 128
MTB_EXCLUDE = 4  # grey levels around the median left out of the comparison (noise)
MIN_INFORMATIVE = 0.2  # share of a frame's pixels outside that band for MTB to align it
# Window pull: where the brightest frame is blown out (luma over this), and how far its mask feathers.
WINDOW_CLIPPED = 245
WINDOW_FEATHER = 0.01  # of the long edge

EXIF_IFD = 0x8769
DATETIME_ORIGINAL, DATETIME = 0x9003, 0x0132
MAKE, MODEL = 0x010F, 0x0110
EXPOSURE_TIME, EXPOSURE_BIAS, FOCAL_LENGTH = 0x829A, 0x9204, 0x920A


class NotOneBracket(Exception):
    """The frames show different scenes, or cannot be brought into register."""

    def __init__(self) -> None:
        super().__init__(NOT_ONE_BRACKET)


@dataclass(frozen=True)
class Exposure:
    """What a frame's EXIF says about how it was shot; only what grouping needs (never GPS)."""

    taken_at: str | None  # EXIF's own "YYYY:MM:DD HH:MM:SS"
    camera: str | None
    focal_length: float | None
    exposure_time: float | None
    exposure_bias: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at, "camera": self.camera, "focal_length": self.focal_length,
            "exposure_time": self.exposure_time, "exposure_bias": self.exposure_bias,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Exposure | None:
        return cls(**data) if data else None


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 6) if value is not None else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def read_exposure(data: bytes) -> Exposure | None:
    """The frame's capture time, camera, focal length, exposure time and bias; None without EXIF.
    Reads the header only, never the pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "PNG":  # Pillow's getexif() of a PNG decodes every pixel to find a late eXIf chunk
                exif = Image.Exif()
                exif.load(image.info.get("exif") or b"")
            else:
                exif = image.getexif()
    except Exception:  # noqa: BLE001  (an unreadable header just means no suggestion)
        return None
    if not exif:
        return None
    detail = exif.get_ifd(EXIF_IFD)
    camera = " ".join(str(exif.get(tag, "")).strip("\x00 ") for tag in (MAKE, MODEL)).strip() or None
    taken = detail.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    return Exposure(
        taken_at=str(taken).strip("\x00 ") if taken else None, camera=camera,
        focal_length=_number(detail.get(FOCAL_LENGTH)), exposure_time=_number(detail.get(EXPOSURE_TIME)),
        exposure_bias=_number(detail.get(EXPOSURE_BIAS)),
    )


def _taken(exposure: Exposure) -> datetime | None:
    try:
        return datetime.strptime(exposure.taken_at or "", "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def suggest_groups(frames: list[tuple[Any, Exposure | None]]) -> list[list[Any]]:
    """Groups of ids whose frames look like one bracket: shot one after another (each within a few
    seconds of the last one's end), same camera and focal length, exposures that differ. A frame
    whose exposure repeats one already in the group starts the next bracket."""
    shots = [(key, exposure, _taken(exposure)) for key, exposure in frames if exposure is not None]
    shots = [shot for shot in shots if shot[2] is not None]
    shots.sort(key=lambda shot: (shot[1].camera or "", shot[1].focal_length or 0, shot[2]))
    groups: list[list[Any]] = []
    current: list[tuple[Any, Exposure, datetime]] = []

    def close() -> None:
        if MIN_FRAMES <= len(current) <= MAX_FRAMES:
            groups.append([key for key, _, _ in current])

    for shot in shots:
        key, exposure, taken = shot
        if current:
            _, last, last_taken = current[-1]
            gap = (taken - last_taken).total_seconds() - (last.exposure_time or 0)
            same_setup = (exposure.camera, exposure.focal_length) == (last.camera, last.focal_length)
            seen = {(e.exposure_time, e.exposure_bias) for _, e, _ in current}
            if not same_setup or gap > SUGGEST_GAP_SECONDS or (exposure.exposure_time, exposure.exposure_bias) in seen:
                close()
                current = []
        current.append(shot)
    close()
    return groups


def _small_luma(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = SCENE_CHECK_WIDTH / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)


def _disagreement(first: np.ndarray, second: np.ndarray) -> float:
    """Share of pixels on opposite sides of their frame's median (Ward's exposure-invariant bitmaps)."""
    bits = []
    for luma in (first, second):
        median = float(np.median(luma))
        bits.append((luma > median, np.abs(luma.astype(np.int16) - median) > MTB_EXCLUDE))
    (above1, sure1), (above2, sure2) = bits
    sure = sure1 & sure2
    return float(((above1 ^ above2) & sure).sum() / max(int(sure.sum()), 1))


def _informative(luma: np.ndarray) -> bool:
    """Whether a frame's median threshold bitmap says anything: a nearly black frame (only its
    windows exposed) has most pixels within noise of its median, and MTB would shift it at random."""
    median = float(np.median(luma))
    return float((cv2.absdiff(luma, median) > MTB_EXCLUDE).mean()) >= MIN_INFORMATIVE


def align(frames: list[np.ndarray]) -> None:
    """Shift each frame (in place) onto the middle exposure, by OpenCV's AlignMTB shifts.

    Unlike `AlignMTB.process`, the pivot is the middle of the frames whose bitmaps are
    informative, and a frame whose bitmap is not stays where it is (a tripod shot, or one the
    scene check will refuse): on the test bracket MTB moves the darkest frame by 19 pixels.
    """
    lumas = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    usable = sorted((i for i, luma in enumerate(lumas) if _informative(luma)), key=lambda i: float(lumas[i].mean()))
    if len(usable) < 2:
        return
    mtb = cv2.createAlignMTB()
    pivot = usable[len(usable) // 2]
    for i in usable:
        if i != pivot:
            shift = mtb.calculateShift(lumas[pivot], lumas[i])
            if shift != (0, 0):
                frames[i] = mtb.shiftMat(frames[i], shift)


def check_one_scene(frames: list[np.ndarray]) -> None:
    """NotOneBracket unless every frame matches its nearest exposure: same size, same scene."""
    if len({frame.shape for frame in frames}) != 1:
        raise NotOneBracket
    small = sorted((_small_luma(frame) for frame in frames), key=lambda luma: float(luma.mean()))
    for darker, brighter in zip(small, small[1:], strict=False):
        if _disagreement(darker, brighter) > SCENE_DISAGREEMENT:
            raise NotOneBracket


def _window_pull(merged: np.ndarray, frames: list[np.ndarray]) -> np.ndarray:
    """Where the brightest frame is blown out (windows), take the darkest frame's detail, brought
    to the merged photo's brightness there, through a feathered mask."""
    means = [float(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).mean()) for frame in frames]
    brightest, darkest = frames[int(np.argmax(means))], frames[int(np.argmin(means))]
    mask = (cv2.cvtColor(brightest, cv2.COLOR_RGB2GRAY) >= WINDOW_CLIPPED).astype(np.float32)
    if not mask.any():
        return merged
    sigma = max(1.0, WINDOW_FEATHER * max(mask.shape))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]
    dark = darkest.astype(np.float32) / 255
    region = mask[..., 0] > 0.5
    # Match the darkest frame's window brightness to the merge's, keeping its detail.
    gain = float(merged[region].mean() / max(dark[region].mean(), 1e-3)) if region.any() else 1.0
    pulled = np.clip(dark * gain, 0, 1)
    return merged * (1 - mask) + pulled * mask


def merge_bracket(frames: list[np.ndarray], *, window_pull: bool = False) -> np.ndarray:
    """One photo from a bracket's RGB uint8 frames (same size): aligned, checked to show one
    scene, fused; NotOneBracket if they do not. The frames list is aligned in place."""
    if not MIN_FRAMES <= len(frames) <= MAX_FRAMES:
        raise ValueError(f"a bracket has {MIN_FRAMES} to {MAX_FRAMES} frames")
    if len({frame.shape for frame in frames}) != 1:
        raise NotOneBracket
    align(frames)
    # After alignment: a shift MTB could not undo shows as a scene that does not match.
    check_one_scene(frames)
    fused = cv2.createMergeMertens().process(frames)
    if window_pull:
        fused = _window_pull(fused, frames)
    return np.clip(fused * 255, 0, 255).astype(np.uint8, copy=False)
