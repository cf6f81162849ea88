"""The local "classic" engine: each preset done with real image processing (Pillow + NumPy).

Decisions are made on a small float copy (masks, white balance, levels); pixels are changed
at full resolution with Pillow's 8-bit C operations (lookup tables, blurs, composites), so a
24-megapixel photo costs a few hundred megabytes and seconds, not gigabytes and minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from luster_app.engines.alteration import Alteration, grid_size, measure, on_grid
from luster_app.engines.base import EngineError, EngineRequest
from luster_app.engines.masks import ANALYSIS_EDGE, find_grass, find_lit_areas, find_sky, sky_alpha, sky_horizon
from luster_app.engines.skies import render_sky
from luster_app.imaging.arrays import LEVELS, dilate, downsized, luminance, mask_image, point_table, to_float
from luster_app.presets import validate_params

log = logging.getLogger(__name__)

# Below this share of the frame, what looks like sky is a gap in foliage: leave it alone.
MIN_SKY_FRACTION = 0.002
# What an edit returns: the edited photo, and where it drew new content (None: nowhere; any
# resolution), which is also where its preset allows that, so the classic engine's own report
# never finds anything redrawn outside the region.
Edited = tuple[Image.Image, np.ndarray | None]
# Healthy lawn green, as a fraction of the hue circle (about 95 degrees).
LAWN_HUE = 0.265


def _analysis(image: Image.Image) -> np.ndarray:
    return to_float(downsized(image, ANALYSIS_EDGE))


def white_balance_gains(rgb: np.ndarray) -> np.ndarray:
    """Per-channel gains that neutralise the light's colour, estimated by shades of grey (p = 6).

    Shades of grey sits between grey-world and white-patch and is robust on scenes dominated by
    one colour (a cream facade, a lawn); clipped and near-black pixels carry no colour information.
    """
    usable = (rgb.max(axis=-1) < 0.97) & (luminance(rgb) > 0.04)
    pixels = rgb[usable] if usable.sum() > 100 else rgb.reshape(-1, 3)
    illuminant = np.power(np.mean(np.power(pixels, 6.0), axis=0), 1 / 6.0) + 1e-6
    gains = illuminant.mean() / illuminant
    return np.clip(gains, 0.67, 1.5).astype(np.float32)


def enhance(image: Image.Image, rgb: np.ndarray, params: dict[str, Any]) -> Edited:
    """White balance, levels and midtone exposure, local contrast, gentle sharpening."""
    strength = float(params["strength"])
    gains = white_balance_gains(rgb) ** (0.5 + 0.5 * strength)
    balanced = np.clip(rgb * gains, 0.0, 1.0)
    lum = luminance(balanced)
    black, white = (float(q) for q in np.quantile(lum, [0.005, 0.995]))
    black = min(black, 0.12) * strength
    white = 1.0 - (1.0 - max(white, 0.7)) * strength
    levelled_median = float(np.clip((np.median(lum) - black) / (white - black), 0.02, 0.98))
    gamma = float(np.clip(np.log(0.46) / np.log(levelled_median), 0.75, 1.35))
    gamma = 1.0 + (gamma - 1.0) * strength
    curves = tuple(np.clip((LEVELS * g - black) / (white - black), 0.0, 1.0) ** gamma for g in gains)
    result = image.point(point_table(*curves))
    long_edge = max(image.size)
    # Clarity: unsharp masking with a wide radius lifts local contrast without halos at edges.
    clarity = ImageFilter.UnsharpMask(radius=max(2.0, long_edge * 0.012), percent=round(35 * strength), threshold=0)
    result = result.filter(clarity)
    result = ImageEnhance.Color(result).enhance(1.0 + 0.12 * strength)
    sharpened = result.filter(ImageFilter.UnsharpMask(radius=max(0.6, long_edge / 4000), percent=round(70 * strength), threshold=2))
    return sharpened, None


def nothing_to_do(what: str) -> EngineError:
    """An edit that would return the photo unchanged: a permanent failure, so it is never charged."""
    return EngineError(
        "nothing_to_do", f"No {what} found in this photo; nothing was charged. Try another preset, such as Enhance.",
        transient=False,
    )


def replace_sky(image: Image.Image, rgb: np.ndarray, style: str) -> Edited:
    """The photo with its sky replaced by a generated one of `style`; EngineError if none is visible."""
    sky = find_sky(rgb)
    if sky.mean() < MIN_SKY_FRACTION:
        log.info("no sky found (%.2f%% of the frame)", 100 * sky.mean())
        raise nothing_to_do("sky")
    new_sky = render_sky(style, image.size, horizon=sky_horizon(sky))
    alpha = sky_alpha(image, rgb, sky)
    return Image.composite(new_sky, image, alpha), _drawn(alpha)


def _drawn(alpha: Image.Image) -> np.ndarray:
    """Where a composite mask takes mostly the new content, measured on a small copy."""
    return np.asarray(downsized(alpha, ANALYSIS_EDGE), dtype=np.uint8) >= 128


def sky(image: Image.Image, rgb: np.ndarray, params: dict[str, Any]) -> Edited:
    return replace_sky(image, rgb, params["style"])


def dusk(image: Image.Image, rgb: np.ndarray, params: dict[str, Any]) -> Edited:
    """Blue-hour grade, a twilight sky, and warm light in the brightest areas below the skyline."""
    intensity = float(params["intensity"])
    exposure = 1.0 - 0.5 * intensity
    tint = np.array([1.0 - 0.2 * intensity, 1.0 - 0.1 * intensity, 1.0 + 0.06 * intensity], dtype=np.float32)
    lift = np.array([0.0, 0.01, 0.035], dtype=np.float32) * intensity
    curves = tuple(np.clip(LEVELS ** (1.0 + 0.15 * intensity) * exposure * tint[c] + lift[c], 0.0, 1.0) for c in range(3))
    graded = ImageEnhance.Color(image.point(point_table(*curves))).enhance(1.0 - 0.15 * intensity)

    sky_mask, drawn = find_sky(rgb), None
    if sky_mask.mean() >= MIN_SKY_FRACTION:
        twilight = render_sky("twilight", image.size, horizon=sky_horizon(sky_mask))
        alpha = sky_alpha(image, rgb, sky_mask)
        graded, drawn = Image.composite(twilight, graded, alpha), _drawn(alpha)

    glow = float(params["window_glow"])
    if glow <= 0:
        return graded, drawn
    lit = find_lit_areas(rgb, exclude=dilate(sky_mask, 2))
    # Interior light: the original brightness, warmed, as if lamps were on behind the glass.
    warm = image.point(point_table(np.clip(LEVELS * 1.15 + 0.04, 0, 1), LEVELS * 0.92, LEVELS * 0.6))
    # The glow is light (a tone change of the photo's own pixels), not new content.
    return Image.composite(warm, graded, mask_image(np.clip(lit * glow, 0.0, 1.0), image.size)), drawn


def lawn(image: Image.Image, rgb: np.ndarray, params: dict[str, Any]) -> Edited:
    """Grass turned an even, healthy green; everything outside the grass mask keeps its pixels."""
    grass = find_grass(rgb)
    strength = float(params["strength"])
    if grass.max() < 0.5:
        log.info("no lawn found")
        raise nothing_to_do("lawn")
    if strength <= 0:
        raise EngineError("nothing_to_do", "A lawn strength of 0 changes nothing; nothing was charged.", transient=False)
    hue, saturation, value = image.convert("HSV").split()
    # Pull yellow, brown and olive hues toward one green; leave blues and purples alone.
    near = (LEVELS > 0.03) & (LEVELS < 0.53)
    hue = hue.point(point_table(np.where(near, LAWN_HUE + (LEVELS - LAWN_HUE) * 0.3, LEVELS)))
    saturation = saturation.point(point_table(np.clip(0.28 + 0.85 * LEVELS, 0.0, 1.0)))
    # Even out patchiness: blend brightness toward its neighbourhood's, then lift it a touch.
    neighbourhood = value.filter(ImageFilter.GaussianBlur(max(2.0, max(image.size) * 0.01)))
    value = Image.blend(value, neighbourhood, 0.35).point(point_table(LEVELS**0.9))
    green = Image.merge("HSV", (hue, saturation, value)).convert("RGB")
    weight = np.clip(grass * strength, 0.0, 1.0)
    # Evening out the patches redraws texture, so the grass it takes counts as redrawn.
    return Image.composite(green, image, mask_image(weight, image.size)), weight >= 0.5


EDITS: dict[str, Callable[[Image.Image, np.ndarray, dict[str, Any]], Edited]] = {
    "enhance": enhance,
    "sky": sky,
    "dusk": dusk,
    "lawn": lawn,
}


class ClassicEngine:
    """Pillow/NumPy edits on this machine: free, private, and every preset but declutter."""

    name = "classic"
    model = ""
    # It computes on this machine: the worker runs it inside its bounded CPU slots.
    cpu_bound = True
    presets = frozenset(EDITS)

    def supports(self, preset: str) -> bool:
        return preset in self.presets

    def edit(self, request: EngineRequest) -> Image.Image:
        """The edited photo at the request image's exact size."""
        return self.edit_measured(request)[0]

    def edit_measured(self, request: EngineRequest) -> tuple[Image.Image, Alteration]:
        """`edit`, and exactly where it drew new content: from its own masks."""
        if request.preset not in EDITS:
            raise EngineError(
                "preset_unsupported",
                f"The local engine cannot do {request.preset!r}: removing clutter needs the AI engine. "
                "Nothing was charged; choose another preset or ask for AI edits to be enabled.",
                transient=False,
            )
        params = validate_params(request.preset, request.params)
        image = request.image if request.image.mode == "RGB" else request.image.convert("RGB")
        result, drawn = EDITS[request.preset](image, _analysis(image), params)
        if result.size != image.size:  # a programming error, never a user's
            raise AssertionError(f"classic {request.preset} changed the size {image.size} -> {result.size}")
        result.info = {}
        grid = grid_size(image.size)
        redrawn = on_grid(drawn, grid) if drawn is not None else np.zeros((grid[1], grid[0]), dtype=bool)
        return result, measure(preset=request.preset, redrawn=redrawn, allowed=redrawn, measured_by="masks")

