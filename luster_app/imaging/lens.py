"""Lens correction: undo the barrel (or pincushion) distortion of the lens the photo was taken with.

The camera, lens and focal length come from the original's EXIF; the distortion model of that
lens comes from lensfun's profile database, shipped inside `lensfunpy`. Luster's decisions:
which EXIF fields name the lens, when a match is good enough, and to refuse (leave the photo
as it is, saying so) rather than guess when there is no profile.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import cv2
import lensfunpy
import numpy as np
from PIL import Image

MAKE, MODEL, EXIF_IFD = 0x010F, 0x0110, 0x8769
FOCAL_LENGTH, F_NUMBER, LENS_MAKE, LENS_MODEL = 0x920A, 0x829D, 0xA433, 0xA434
# Assumed when EXIF gives no f-number: distortion hardly depends on it.
DEFAULT_APERTURE = 8.0
# A lens match scoring below this is a guess (lensfun scores name similarity), not a profile.
MIN_LENS_SCORE = 50


@dataclass(frozen=True)
class CameraInfo:
    """What the original's EXIF says about how it was taken."""

    make: str = ""
    model: str = ""
    lens_make: str = ""
    lens_model: str = ""
    focal_length: float | None = None
    aperture: float | None = None

    def describe(self) -> str:
        return " ".join(part for part in (self.make, self.model, "with", self.lens_model or "its lens") if part)


@dataclass(frozen=True)
class LensResult:
    image: Image.Image
    changed: bool
    note: str


def _text(value: object) -> str:
    return str(value).strip().strip("\x00").strip() if value else ""


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]  (EXIF rationals convert)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number > 0 else None


def camera_info(original: bytes) -> CameraInfo:
    """The camera and lens named in the original file's EXIF (empty fields where it names none)."""
    try:
        exif = Image.open(io.BytesIO(original)).getexif()
    except Exception:  # noqa: BLE001  (an unreadable header only means no profile can be found)
        return CameraInfo()
    details = exif.get_ifd(EXIF_IFD)
    return CameraInfo(
        make=_text(exif.get(MAKE)), model=_text(exif.get(MODEL)), lens_make=_text(details.get(LENS_MAKE)),
        lens_model=_text(details.get(LENS_MODEL)), focal_length=_number(details.get(FOCAL_LENGTH)),
        aperture=_number(details.get(F_NUMBER)),
    )


@cache
def _database() -> lensfunpy.Database:
    return lensfunpy.Database()  # parses lensfun's XML profiles once per process


def _profile(camera: CameraInfo) -> tuple[lensfunpy.Camera, lensfunpy.Lens] | None:
    if not camera.make or not camera.model:
        return None
    cameras = _database().find_cameras(camera.make, camera.model)
    if not cameras:
        return None
    lenses = _database().find_lenses(cameras[0], camera.lens_make or None, camera.lens_model or None)
    if camera.lens_model:
        lenses = [lens for lens in lenses if lens.score >= MIN_LENS_SCORE]
    # Without a lens name only a camera with one fixed lens (a compact, a phone) is certain.
    if not lenses or (not camera.lens_model and len(lenses) != 1):
        return None
    return cameras[0], lenses[0]


def correct_distortion(image: Image.Image, camera: CameraInfo) -> LensResult:
    """The photo with its lens's distortion taken out (same size: lensfun scales it to leave no
    empty edges), or the photo untouched with the reason (no profile, no focal length)."""
    found = _profile(camera)
    if found is None:
        return LensResult(image, False, f"no lens profile for {camera.describe()}: distortion left as it is"
                          if camera.make else "the photo does not say which camera and lens took it: distortion left as it is")
    body, lens = found
    focal = camera.focal_length or (lens.min_focal if lens.min_focal == lens.max_focal else None)
    if focal is None:
        return LensResult(image, False, "the photo does not say its focal length: distortion left as it is")
    if not lens.calib_distortion:
        return LensResult(image, False, f"the {lens.model} profile has no distortion data: distortion left as it is")
    modifier = lensfunpy.Modifier(lens, body.crop_factor, image.width, image.height)
    modifier.initialize(focal, camera.aperture or DEFAULT_APERTURE, flags=lensfunpy.ModifyFlags.DISTORTION)
    coordinates = modifier.apply_geometry_distortion()
    pixels = cv2.remap(np.asarray(image.convert("RGB")), coordinates, None, cv2.INTER_LANCZOS4,
                       borderMode=cv2.BORDER_REPLICATE)
    return LensResult(Image.fromarray(pixels), True, f"lens distortion corrected ({lens.model} at {focal:g} mm)")
