"""Where the classic engine edits: sky, grass and bright (lit) areas, found on a small copy.

Masks are computed at ANALYSIS_EDGE pixels on the long edge (cheap on a 24-megapixel photo)
and refined at full resolution only with Pillow's 8-bit C operations.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from luster_app.imaging.arrays import (
    LEVELS,
    blur,
    close_dark_lines,
    dilate,
    erode,
    grow_from,
    luminance,
    mask_image,
    point_table,
    rgb_to_hsv,
    smoothstep,
)

ANALYSIS_EDGE = 512
# Sky: smooth (mean absolute luminance step below this) and pale or blue.
SKY_MAX_TEXTURE = 0.03
SKY_MAX_PALE_SATURATION = 0.12
SKY_BLUE_HUES = (0.50, 0.72)  # cyan to violet-blue, as fractions of the hue circle
# An overcast sky is the brightest smooth thing in the frame; a pale wall is darker.
SKY_BRIGHTNESS_MARGIN = 0.12
# Grass: yellow-green to green, textured (blades), in the lower part of the frame.
GRASS_HUES_DEGREES = (40.0, 160.0)
DRY_GRASS_HUES_DEGREES = (15.0, 170.0)


def _texture(lum: np.ndarray) -> np.ndarray:
    step_y = np.abs(np.diff(lum, axis=0, append=lum[-1:]))
    step_x = np.abs(np.diff(lum, axis=1, append=lum[:, -1:]))
    return blur(step_x + step_y, 1.0)


def find_sky(rgb: np.ndarray) -> np.ndarray:
    """Boolean sky mask of a small float RGB copy: bright, smooth, pale or blue, reaching the top edge."""
    height = rgb.shape[0]
    # Wires and twigs would cut the sky into pieces; close them before measuring smoothness.
    closed = close_dark_lines(rgb, 2)
    lum = luminance(closed)
    hue, saturation, value = rgb_to_hsv(closed)
    smooth = _texture(lum) < SKY_MAX_TEXTURE
    pale = smooth & (saturation < SKY_MAX_PALE_SATURATION) & (lum > 0.5)
    top_rows = np.zeros_like(pale)
    top_rows[: max(2, height // 40)] = True
    reference = float(np.quantile(lum[top_rows & pale], 0.9)) if (top_rows & pale).any() else 1.0
    overcast = pale & (lum > max(0.5, reference - SKY_BRIGHTNESS_MARGIN))
    blue = smooth & (hue > SKY_BLUE_HUES[0]) & (hue < SKY_BLUE_HUES[1]) & (saturation > 0.12) & (value > 0.35)
    seed = np.zeros_like(pale)
    seed[0] = True
    return grow_from(seed, overcast | blue)


def sky_horizon(sky: np.ndarray) -> float:
    """The skyline as a fraction of the height: where the sky's lowest part (95th percentile row) ends."""
    rows = np.nonzero(sky)[0]
    if rows.size == 0:
        return 0.0
    return float(np.quantile(rows, 0.95) + 1) / sky.shape[0]


def sky_alpha(image: Image.Image, rgb: np.ndarray, sky: np.ndarray) -> Image.Image:
    """A feathered full-resolution `L` mask of the sky that follows the true skyline.

    The small mask is widened a little and then keyed at full resolution on brightness and
    saturation relative to the sky itself, so roofs, wires and trees keep their own pixels.
    """
    size = image.size
    band = mask_image(blur(dilate(sky, 2).astype(np.float32), 1.0), size)
    sky_level = float(np.median(luminance(rgb)[sky])) if sky.any() else 1.0
    brightness = image.convert("L").point(point_table(smoothstep(0.6 * sky_level, 0.85 * sky_level, LEVELS)))
    hsv = image.convert("HSV")
    pale = hsv.getchannel("S").point(point_table(1.0 - smoothstep(0.14, 0.26, LEVELS)))
    hue_lo, hue_hi = SKY_BLUE_HUES
    blue = hsv.getchannel("H").point(point_table(((LEVELS >= hue_lo) & (LEVELS <= hue_hi)).astype(np.float32)))
    # Pale (overcast) or blue, and about as bright as the sky: roofs and walls drop out.
    key = ImageChops.multiply(brightness, ImageChops.lighter(pale, blue))
    feather = max(0.8, max(size) / 2000)
    return ImageChops.multiply(band, key).filter(ImageFilter.GaussianBlur(feather))


def find_grass(rgb: np.ndarray) -> np.ndarray:
    """Soft 0..1 grass mask: textured yellow-green to green ground in the lower part of the frame,
    with the dry or bare patches inside it."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    lum = luminance(rgb)
    hue, saturation, value = rgb_to_hsv(rgb)
    degrees = hue * 360.0
    # Blades make fine texture; plaster walls of the same yellow are smooth.
    fine_texture = blur(np.abs(lum - blur(lum, 1.0)), 2.0)
    ground = smoothstep(0.3, 0.5, (np.arange(height, dtype=np.float32) / height))[:, None] * np.ones((1, width), np.float32)
    core = (
        (degrees > GRASS_HUES_DEGREES[0]) & (degrees < GRASS_HUES_DEGREES[1])
        & (saturation > 0.18) & (value > 0.28)
        & (fine_texture > 0.025) & (fine_texture < 0.09)
        & (ground > 0.5)
    )
    # Grass comes in stretches: drop scattered look-alike pixels, then take in the dry patches.
    dense = blur(core.astype(np.float32), 0.012 * side) > 0.45
    radius = max(2, round(0.01 * side))
    lawn = erode(dilate(dense, radius), radius)
    lawn &= (degrees > DRY_GRASS_HUES_DEGREES[0]) & (degrees < DRY_GRASS_HUES_DEGREES[1])
    lawn &= (saturation > 0.1) & (value > 0.2)
    return blur(lawn.astype(np.float32), 1.5) * ground


def find_lit_areas(rgb: np.ndarray, *, exclude: np.ndarray) -> np.ndarray:
    """Soft 0..1 mask of the brightest areas below the skyline (windows, lamps, pale walls),
    strongest in coherent patches: scattered bright specks (petals, glints) barely count."""
    lum = luminance(rgb)
    candidates = ~exclude
    if candidates.sum() < 16:
        return np.zeros_like(lum)
    threshold = max(0.45, float(np.quantile(lum[candidates], 0.9)))
    bright = smoothstep(threshold - 0.05, threshold + 0.05, lum) * candidates
    # Full glow in coherent patches; isolated specks get only a faint warmth, not orange dots.
    coherent = smoothstep(0.55, 0.8, blur(bright, 3.0))
    return blur((bright * (0.3 + 0.7 * coherent)).astype(np.float32), 1.5)
