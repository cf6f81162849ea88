"""Real photos with known geometric faults, for the correction tests."""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np
from PIL import Image

from luster_app.imaging.verticals import DEFAULT_FOCAL_SHARE, straighten
from tests.conftest import PHOTOS

BUILDINGS = PHOTOS / "gps" / "DSCN0029.jpg"  # a street of tall facades, door and window frames


@cache
def straight_building() -> Image.Image:
    """The street photo with its own slight tilt taken out: the reference "straight" photo."""
    return straighten(Image.open(BUILDINGS).convert("RGB")).image


def keystone(image: Image.Image, pitch_degrees: float) -> Image.Image:
    """The photo as a camera pitched `pitch_degrees` up (negative: down) would have taken it:
    the homography of that rotation, so verticals converge as they do in a real photo."""
    width, height = image.size
    focal = DEFAULT_FOCAL_SHARE * max(width, height)
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    rotation = cv2.Rodrigues(np.array([math.radians(pitch_degrees), 0.0, 0.0]))[0]
    warp = camera @ rotation @ np.linalg.inv(camera)
    pixels = cv2.warpPerspective(np.asarray(image), warp, image.size, flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(pixels)


def long_lines_lean(image: Image.Image, count: int = 10) -> float:
    """Length-weighted mean lean from upright, in degrees, of the photo's `count` longest
    near-vertical segments: measured here with OpenCV directly, not by the code under test."""
    grey = np.asarray(image.convert("L"))
    lines = cv2.createLineSegmentDetector().detect(grey)[0].reshape(-1, 4)
    dx, dy = lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1]
    lean, length = np.degrees(np.arctan2(np.abs(dx), np.abs(dy))), np.hypot(dx, dy)
    vertical = lean < 15
    lean, length = lean[vertical], length[vertical]
    longest = np.argsort(-length)[:count]
    return float(np.average(lean[longest], weights=length[longest]))
