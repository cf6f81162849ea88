"""Honest edits: where an edit drew new structure, measured against where its preset may.

An edit either changes tone and colour (exposure, white balance, a warmer light: the old
structure stays, only its values move) or draws something new (a sky with clouds, a removed
bin, a window that was not there). The `redrawn` map says per pixel which; the preset's
allowed region says where drawing is expected: the sky (sky, dusk), the lawn (lawn), small
separate objects (declutter), nowhere (enhance). The measure is the share of the photo redrawn
inside and outside that region, and the redrawn areas with their boxes (as fractions of the
photo, so any view of any size can outline them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from luster_app.engines.masks import find_grass, find_sky
from luster_app.imaging.arrays import dilate

# The measure's grid: the long edge in cells (0.3% of the photo is ~150 cells of 256×171).
MEASURE_EDGE = 256
# Declutter may remove a separate object up to this share of the photo; a larger one is not clutter.
DECLUTTER_MAX_OBJECT = 0.02
# The skyline and lawn edge are not sharp: a model redrawing a few pixels past them is expected.
REGION_MARGIN_CELLS = 2
AREA_GAP_CELLS = 2  # redrawn pieces this close belong to one area
MAX_AREAS = 12  # areas listed on the job (the largest first); the shares count them all
# How each preset's change reads, and the region its redrawing belongs in.
WHAT = {"enhance": "tone and colour adjusted", "sky": "sky replaced", "dusk": "turned to dusk",
        "lawn": "lawn greened", "declutter": "clutter removed"}
REGION = {"sky": "the sky", "dusk": "the sky", "lawn": "the lawn", "declutter": "small objects"}


@dataclass(frozen=True)
class Area:
    """One connected redrawn area: its box (left, top, right, bottom as 0..1 fractions of the
    photo), its share of the photo, and whether it lies in the preset's region."""

    box: tuple[float, float, float, float]
    share: float
    allowed: bool


@dataclass(frozen=True)
class Alteration:
    preset: str
    measured_by: str  # "fit" (from the model's answer) or "masks" (the classic engine's own)
    inside: float  # share of the photo redrawn inside the preset's region
    outside: float  # ... and outside it
    areas: tuple[Area, ...]

    @property
    def largest_outside(self) -> Area | None:
        return max((a for a in self.areas if not a.allowed), key=lambda a: a.share, default=None)

    def summary(self) -> str:
        """One line for the disclosure page: "sky replaced; 0.2% of the photo redrawn, all in the sky"."""
        what, region = WHAT.get(self.preset, self.preset), REGION.get(self.preset)
        total = self.inside + self.outside
        if total < 0.0005:
            return f"{what}; nothing redrawn"
        amount = f"{_percent(total)} of the photo redrawn"
        if region is None:
            return f"{what}; {amount}"
        if self.outside < 0.0005:
            return f"{what}; {amount}, all in {region}"
        return f"{what}; {amount}, {_percent(self.outside)} outside {region}"

    def to_json(self) -> dict:
        largest = self.largest_outside
        return {
            "measured_by": self.measured_by,
            "redrawn_inside": round(self.inside, 5),
            "redrawn_outside": round(self.outside, 5),
            "largest_outside": _area_json(largest) if largest else None,
            "areas": [_area_json(a) for a in self.areas],
            "summary": self.summary(),
        }

    def needs_review(self, *, outside_share: float, area_share: float) -> bool:
        largest = self.largest_outside
        return self.outside > outside_share or (largest is not None and largest.share > area_share)


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _area_json(area: Area) -> dict:
    return {"box": [round(float(v), 4) for v in area.box], "share": round(area.share, 5), "allowed": area.allowed}


def grid_size(size: tuple[int, int]) -> tuple[int, int]:
    """The measure's grid (width, height) for a photo of `size`."""
    scale = MEASURE_EDGE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def on_grid(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A boolean or 0..1 mask of any resolution as a boolean mask on the grid (area-averaged)."""
    plane = Image.fromarray(mask.astype(np.float32), mode="F")
    return np.asarray(plane.resize(grid, Image.Resampling.BOX)) >= 0.5


def allowed_region(preset: str, rgb: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Where `preset` may redraw, on the grid, from the original's small float copy `rgb`."""
    if preset in ("sky", "dusk"):
        region = on_grid(find_sky(rgb), grid)
    elif preset == "lawn":
        region = on_grid(find_grass(rgb) > 0.3, grid)
    else:  # enhance: nowhere; declutter: decided per area by its size
        return np.zeros((grid[1], grid[0]), dtype=bool)
    return dilate(region, REGION_MARGIN_CELLS) if region.any() else region


def measure(*, preset: str, redrawn: np.ndarray, allowed: np.ndarray, measured_by: str) -> Alteration:
    """The alteration of an edit from its redrawn map and the allowed region (same grid)."""
    cells = redrawn.size
    areas = []
    # A new object is seen mostly by its edges and details (a window's frame and bars, not its
    # flat panes): pieces a cell or two apart are one area.
    flat = redrawn.ravel()
    for group in _components(dilate(redrawn, AREA_GAP_CELLS)):
        pixels = group[flat[group]]
        rows, cols = pixels // redrawn.shape[1], pixels % redrawn.shape[1]
        share = pixels.size / cells
        inside = allowed[rows, cols]
        if preset == "declutter":
            inside = np.full(pixels.size, share <= DECLUTTER_MAX_OBJECT)
        # An area reaching past the region counts with its part outside it.
        for part, allowed_part in ((inside, True), (~inside, False)):
            if part.any():
                r, c = rows[part], cols[part]
                box = (c.min() / redrawn.shape[1], r.min() / redrawn.shape[0],
                       (c.max() + 1) / redrawn.shape[1], (r.max() + 1) / redrawn.shape[0])
                areas.append(Area(box=box, share=int(part.sum()) / cells, allowed=allowed_part))
    listed = sorted(areas, key=lambda a: -a.share)[:MAX_AREAS]
    # The largest area outside is always listed: it decides the review, and the owner must see it.
    largest = max((a for a in areas if not a.allowed), key=lambda a: a.share, default=None)
    if largest is not None and largest not in listed:
        listed.append(largest)
    return Alteration(
        preset=preset, measured_by=measured_by, inside=sum(a.share for a in areas if a.allowed),
        outside=sum(a.share for a in areas if not a.allowed), areas=tuple(listed),
    )


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected areas of a boolean grid, each as its flat cell indices (a breadth-first
    search: the grid is small, and NumPy has no labelling of its own)."""
    height, width = mask.shape
    todo = mask.ravel().copy()
    found = []
    for start in np.flatnonzero(todo):
        if not todo[start]:
            continue
        todo[start] = False
        queue, members = deque([int(start)]), []
        while queue:
            cell = queue.popleft()
            members.append(cell)
            row, col = divmod(cell, width)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    r, c = row + dr, col + dc
                    if 0 <= r < height and 0 <= c < width and todo[r * width + c]:
                        todo[r * width + c] = False
                        queue.append(r * width + c)
        found.append(np.array(members))
    return found
