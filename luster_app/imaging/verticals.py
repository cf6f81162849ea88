"""Straight verticals: find the lines that should stand upright, undo the camera's tilt, crop clean.

OpenCV's line segment detector finds segments on a small grey copy; Luster decides which of
them are verticals (near-upright and long), where they converge (their vanishing point), and
whether the correction is worth its crop. The warp is the homography of a camera rotation,
K·R·K⁻¹, that sends that vanishing point to vertical infinity: verticals come out parallel and
upright, and the frame is distorted no more than turning the camera would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# Lines are found on a copy this size: plenty for angles, fast on a 24-megapixel photo.
ANALYSIS_EDGE = 1024
# A segment leaning more than this from upright is not a vertical (a roof edge, a stair rail).
MAX_LEAN_DEGREES = 20.0
# Segments shorter than this share of the frame height are texture, not walls or frames.
MIN_SEGMENT_SHARE = 0.05
# Verticals must add up to this many frame heights before the photo is judged at all.
MIN_TOTAL_HEIGHTS = 3.0
# A tilt below this is not visible: the photo is left untouched (no resampling, no crop).
MIN_CORRECTION_DEGREES = 0.3
# A tilt beyond this is a deliberate angle (or a misreading), not a camera held crooked.
MAX_CORRECTION_DEGREES = 20.0
# Never crop away more than this share of the photo's area to hide the warp's empty corners.
MAX_CROP_SHARE = 0.25
# The longest segments whose crossings are tried as the vanishing point (pairs: n(n-1)/2).
CANDIDATE_SEGMENTS = 40
# A segment within this angle of the line to the vanishing point agrees with it.
AGREE_DEGREES = 1.0
# Focal length assumed when EXIF gives none: about a 28 mm lens on full frame, usual indoors.
DEFAULT_FOCAL_SHARE = 0.78


@dataclass(frozen=True)
class VerticalsResult:
    image: Image.Image
    changed: bool
    degrees: float  # the tilt that was (or would have been) corrected
    note: str


@dataclass(frozen=True)
class Segments:
    """Near-vertical segments in full-resolution pixel coordinates: (x1, y1, x2, y2), lengths."""

    lines: np.ndarray
    lengths: np.ndarray


def find_verticals(image: Image.Image) -> Segments:
    """The photo's near-vertical line segments, found by OpenCV's LSD on a grey analysis copy."""
    scale = min(1.0, ANALYSIS_EDGE / max(image.size))
    grey = np.asarray(image.convert("L"))
    if scale < 1:
        grey = cv2.resize(grey, (round(image.width * scale), round(image.height * scale)), interpolation=cv2.INTER_AREA)
    found = cv2.createLineSegmentDetector().detect(grey)[0]
    if found is None:
        return Segments(np.zeros((0, 4)), np.zeros(0))
    lines = found.reshape(-1, 4).astype(np.float64) / scale
    dx, dy = lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1]
    lengths = np.hypot(dx, dy)
    lean = np.degrees(np.arctan2(np.abs(dx), np.abs(dy)))
    keep = (lean <= MAX_LEAN_DEGREES) & (lengths >= MIN_SEGMENT_SHARE * image.height)
    return Segments(lines[keep], lengths[keep])


def _misfit(segments: Segments, point: np.ndarray) -> np.ndarray:
    """Each segment's angle, in degrees, from the line joining its midpoint to `point`."""
    x1, y1, x2, y2 = segments.lines.T
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    tx, ty = point[0] - mx * point[2], point[1] - my * point[2]
    cross = np.abs((x2 - x1) * ty - (y2 - y1) * tx)
    dot = np.abs((x2 - x1) * tx + (y2 - y1) * ty)
    return np.degrees(np.arctan2(cross, dot))


def _fit(segments: Segments, chosen: np.ndarray) -> np.ndarray:
    """The homogeneous point the chosen segments' lines pass closest to (weighted by length)."""
    x1, y1, x2, y2 = segments.lines[chosen].T
    lines = np.cross(np.stack([x1, y1, np.ones_like(x1)], 1), np.stack([x2, y2, np.ones_like(x2)], 1))
    lines /= np.hypot(lines[:, 0], lines[:, 1])[:, None]
    point = np.linalg.svd(lines * np.sqrt(segments.lengths[chosen])[:, None])[2][-1]
    return point if point[1] >= 0 else -point


def _vanishing_point(segments: Segments) -> tuple[np.ndarray, np.ndarray]:
    """Where the verticals converge (finite when they do, at infinity when parallel) and which
    segments agree with it: every crossing of two long segments, and straight up, is tried; the
    one most segment length agrees with wins, then is refined on the segments that agree."""
    top = np.argsort(-segments.lengths)[:CANDIDATE_SEGMENTS]
    x1, y1, x2, y2 = segments.lines[top].T
    lines = np.cross(np.stack([x1, y1, np.ones_like(x1)], 1), np.stack([x2, y2, np.ones_like(x2)], 1))
    first, second = np.triu_indices(len(top), 1)
    candidates = np.vstack([np.cross(lines[first], lines[second]), [[0.0, 1.0, 0.0]]])
    candidates = candidates[np.linalg.norm(candidates, axis=1) > 0]
    scores = [segments.lengths[_misfit(segments, c) < AGREE_DEGREES].sum() for c in candidates]
    point = candidates[int(np.argmax(scores))]
    for _ in range(3):
        agree = _misfit(segments, point) < AGREE_DEGREES
        point = _fit(segments, agree)
    return point, agree


def vertical_tilt(image: Image.Image) -> float | None:
    """How far, in degrees, the camera was tilted from level as the photo's verticals tell it
    (0 when they are parallel and upright), or None when it has too few verticals to tell."""
    segments = find_verticals(image)
    if segments.lengths.sum() < MIN_TOTAL_HEIGHTS * image.height:
        return None
    camera = _camera(image.size, DEFAULT_FOCAL_SHARE)
    return _rotation_to_upright(np.linalg.solve(camera, _vanishing_point(segments)[0]))[1]


def _camera(size: tuple[int, int], focal_share: float) -> np.ndarray:
    width, height = size
    focal = focal_share * max(width, height)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])


def _rotation_to_upright(direction: np.ndarray) -> tuple[np.ndarray, float]:
    """The smallest rotation taking `direction` to the camera's up-down axis, and its angle."""
    d = direction / np.linalg.norm(direction)
    target = np.array([0.0, 1.0, 0.0]) * (1 if d[1] >= 0 else -1)
    axis = np.cross(d, target)
    sine, cosine = np.linalg.norm(axis), float(np.dot(d, target))
    if sine < 1e-12:
        return np.eye(3), 0.0
    rotation = cv2.Rodrigues(axis / sine * math.atan2(sine, cosine))[0]
    return rotation, math.degrees(math.atan2(sine, cosine))


def _largest_rectangle(corners: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float]:
    """(left, top, scale) of the largest rectangle of the photo's aspect inside the convex
    quadrilateral `corners` (clockwise): a grid over centres, a bisection on scale at each."""
    width, height = size
    edges = [(corners[i], corners[(i + 1) % 4]) for i in range(4)]

    def fits(cx: np.ndarray, cy: np.ndarray, scale: np.ndarray) -> np.ndarray:
        ok = np.ones_like(cx, dtype=bool)
        for sx in (-0.5, 0.5):
            for sy in (-0.5, 0.5):
                px, py = cx + sx * scale * width, cy + sy * scale * height
                for (ax, ay), (bx, by) in edges:
                    ok &= (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= -1e-6
        return ok

    xs = np.linspace(corners[:, 0].min(), corners[:, 0].max(), 25)
    ys = np.linspace(corners[:, 1].min(), corners[:, 1].max(), 25)
    cx, cy = (grid.ravel() for grid in np.meshgrid(xs, ys))
    low, high = np.zeros_like(cx), np.full_like(cx, 2.0)
    for _ in range(30):
        middle = (low + high) / 2
        inside = fits(cx, cy, middle)
        low, high = np.where(inside, middle, low), np.where(inside, high, middle)
    best = int(np.argmax(low))
    scale = float(low[best])
    return float(cx[best] - scale * width / 2), float(cy[best] - scale * height / 2), scale


def straighten(image: Image.Image, *, focal_share: float | None = None) -> VerticalsResult:
    """The photo with its verticals upright and cropped to the photo's aspect without empty
    corners, or the photo untouched with the reason (no verticals, no tilt, tilt too strong,
    crop too large)."""
    segments = find_verticals(image)
    if segments.lengths.sum() < MIN_TOTAL_HEIGHTS * image.height:
        return VerticalsResult(image, False, 0.0, "no leaning verticals found (too few vertical lines)")
    camera = _camera(image.size, focal_share or DEFAULT_FOCAL_SHARE)
    direction = np.linalg.solve(camera, _vanishing_point(segments)[0])
    rotation, degrees = _rotation_to_upright(direction)
    if degrees < MIN_CORRECTION_DEGREES:
        return VerticalsResult(image, False, degrees, "no leaning verticals found")
    if degrees > MAX_CORRECTION_DEGREES:
        return VerticalsResult(
            image, False, degrees, f"verticals left as they are: a {degrees:.1f}° tilt looks deliberate"
        )
    homography = camera @ rotation @ np.linalg.inv(camera)
    width, height = image.size
    frame = np.array([[[0, 0]], [[width, 0]], [[width, height]], [[0, height]]], dtype=np.float64)
    corners = cv2.perspectiveTransform(frame, homography).reshape(4, 2)
    left, top, scale = _largest_rectangle(corners, image.size)
    # Crop share measured against the warped frame's area, so a warp that grows the photo is not
    # mistaken for a free crop.
    kept = (scale * width) * (scale * height) / cv2.contourArea(corners.astype(np.float32))
    if 1 - kept > MAX_CROP_SHARE:
        return VerticalsResult(
            image, False, degrees,
            f"verticals left as they are: straightening {degrees:.1f}° would crop {100 * (1 - kept):.0f}% of the photo",
        )
    out_size = (max(1, round(scale * width)), max(1, round(scale * height)))
    shift = np.array([[1, 0, -left], [0, 1, -top], [0, 0, 1]])
    pixels = cv2.warpPerspective(
        np.asarray(image.convert("RGB")), shift @ homography, out_size, flags=cv2.INTER_LANCZOS4,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return VerticalsResult(Image.fromarray(pixels), True, degrees, f"verticals straightened by {degrees:.1f}°")
