"""NumPy helpers for image analysis: float conversion, fast blurs, resizing, colour spaces.

Analysis runs on small float32 copies; full-resolution work stays in Pillow's C code on
8-bit images, so a 24-megapixel photo never needs several float copies in memory.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

# Rec. 709 luma weights, applied to sRGB values: close enough to perceived brightness for masks.
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# The 256 8-bit levels as 0..1 values: the input axis of every tone curve.
LEVELS = np.arange(256, dtype=np.float32) / 255.0


def to_float(image: Image.Image) -> np.ndarray:
    """An RGB image as an H×W×3 float32 array in 0..1."""
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def to_image(array: np.ndarray) -> Image.Image:
    """An H×W×3 (or H×W) float array in 0..1 as an 8-bit RGB (or L) image."""
    return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8))


def point_table(*curves: np.ndarray) -> list[int]:
    """A Pillow `Image.point` table from 0..1 curves over LEVELS (one for L, three for RGB)."""
    return [int(v) for curve in curves for v in np.clip(np.round(curve * 255.0), 0, 255)]


def downsized(image: Image.Image, long_edge: int) -> Image.Image:
    """A copy whose long edge is at most `long_edge`, made fast with `reduce` then Lanczos."""
    scale = long_edge / max(image.size)
    if scale >= 1:
        return image.copy()
    factor = int(1 / scale) // 2  # integer pre-reduction keeps the Lanczos step small and exact enough
    reduced = image.reduce(factor) if factor >= 2 else image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return reduced.resize(size, Image.Resampling.LANCZOS)


def resize_plane(plane: np.ndarray, size: tuple[int, int], resample: int = Image.Resampling.BILINEAR) -> np.ndarray:
    """A 2-D float array resized to `size` (width, height)."""
    return np.asarray(Image.fromarray(plane.astype(np.float32), mode="F").resize(size, resample))


def mask_image(mask: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A soft 0..1 mask as an 8-bit `L` image at `size`, upsampled smoothly for compositing."""
    return to_image(mask).resize(size, Image.Resampling.BILINEAR)


def _box_blur_axis(plane: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over 2r+1 samples along `axis`, edges extended, from a running sum."""
    length = plane.shape[axis]
    first, last = np.take(plane, [0], axis=axis), np.take(plane, [length - 1], axis=axis)
    padded = np.concatenate(
        [np.repeat(first, radius + 1, axis=axis), plane, np.repeat(last, radius, axis=axis)], axis=axis
    )
    summed = np.cumsum(padded, axis=axis, dtype=np.float32)
    upper = [slice(None)] * plane.ndim
    lower = [slice(None)] * plane.ndim
    upper[axis], lower[axis] = slice(2 * radius + 1, None), slice(None, -2 * radius - 1)
    return (summed[tuple(upper)] - summed[tuple(lower)]) * np.float32(1.0 / (2 * radius + 1))


def box_blur(plane: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, edges extended; O(1) per pixel whatever the radius."""
    if radius < 1:
        return plane.astype(np.float32)
    return _box_blur_axis(_box_blur_axis(plane.astype(np.float32, copy=False), radius, 0), radius, 1)


def blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """An approximate Gaussian blur (three box passes) of a 2-D or H×W×C array."""
    if sigma <= 0.3:
        return array.astype(np.float32)
    # Box width for three passes with the Gaussian's variance (Wells, 1986).
    radius = max(1, round((math.sqrt(12 * sigma * sigma / 3 + 1) - 1) / 2))
    result = array.astype(np.float32)
    for _ in range(3):
        result = box_blur(result, radius)
    return result


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a square of side 2r+1."""
    return box_blur(mask.astype(np.float32), radius) > 1e-4


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion by a square of side 2r+1."""
    return box_blur(mask.astype(np.float32), radius) > 1 - 1e-4


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (0..1, 0 = red), saturation and value of an H×W×3 float array."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    saturation = np.where(value > 1e-6, chroma / np.maximum(value, 1e-6), 0.0)
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        value == r, ((g - b) / safe) % 6.0, np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = np.where(chroma > 1e-6, hue / 6.0, 0.0)
    return hue.astype(np.float32), saturation.astype(np.float32), value.astype(np.float32)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below edge0, 1 above edge1, a smooth ramp between (edges may be in either order)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _spread(region: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    grown = region.copy()
    grown[1:] |= region[:-1]
    grown[:-1] |= region[1:]
    grown[:, 1:] |= region[:, :-1]
    grown[:, :-1] |= region[:, 1:]
    return grown & allowed


def grow_from(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The pixels of `allowed` connected (4-neighbour) to `seed`: a geodesic flood fill."""
    region = seed & allowed
    while True:
        grown = region
        # Eight one-pixel steps per convergence check keep the comparisons cheap.
        for _ in range(8):
            grown = _spread(grown, allowed)
        if np.array_equal(grown, region):
            return region
        region = grown


def _shifted_extreme(plane: np.ndarray, radius: int, axis: int, pick: np.ufunc) -> np.ndarray:
    padded = np.pad(plane, [(radius, radius) if a == axis else (0, 0) for a in range(plane.ndim)], mode="edge")
    length = plane.shape[axis]
    result = np.take(padded, np.arange(0, length), axis=axis)
    for offset in range(1, 2 * radius + 1):
        result = pick(result, np.take(padded, np.arange(offset, offset + length), axis=axis))
    return result


def max_filter(plane: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation: the maximum over a (2r+1)² square (meant for small radii)."""
    return _shifted_extreme(_shifted_extreme(plane, radius, 0, np.maximum), radius, 1, np.maximum)


def min_filter(plane: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion: the minimum over a (2r+1)² square (meant for small radii)."""
    return _shifted_extreme(_shifted_extreme(plane, radius, 0, np.minimum), radius, 1, np.minimum)


def close_dark_lines(array: np.ndarray, radius: int) -> np.ndarray:
    """Grey closing: removes dark features thinner than 2r+1 pixels (wires, twigs) per channel."""
    if array.ndim == 3:
        return np.stack([close_dark_lines(array[..., c], radius) for c in range(array.shape[-1])], axis=-1)
    return min_filter(max_filter(array, radius), radius)
