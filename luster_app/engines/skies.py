"""Generated skies for the classic engine: colour gradients, soft clouds, twilight.

Each sky is drawn small (smooth content loses nothing), upsampled to the photo's size and
dithered so an 8-bit JPEG shows no banding. A fixed seed keeps outputs reproducible.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

from luster_app.imaging.arrays import resize_plane, smoothstep, to_image

DRAW_EDGE = 512
# Colour stops from the zenith (0) to the skyline (1), in sRGB 0..255.
GRADIENTS: dict[str, list[tuple[float, tuple[int, int, int]]]] = {
    "clear_blue": [(0.0, (38, 98, 188)), (0.55, (88, 150, 218)), (1.0, (168, 204, 236))],
    "soft_clouds": [(0.0, (58, 118, 198)), (0.6, (112, 168, 226)), (1.0, (180, 210, 238))],
    "sunset": [(0.0, (52, 64, 128)), (0.45, (150, 108, 150)), (0.8, (236, 148, 104)), (1.0, (250, 196, 122))],
    "twilight": [(0.0, (12, 24, 70)), (0.55, (34, 56, 126)), (0.88, (92, 92, 150)), (1.0, (196, 132, 108))],
}
CLOUD_COLOURS = {"soft_clouds": (246, 247, 250), "sunset": (255, 196, 170)}
CLOUD_AMOUNT = {"soft_clouds": 0.85, "sunset": 0.35}


def _gradient(style: str, t: np.ndarray) -> np.ndarray:
    stops = GRADIENTS[style]
    positions = np.array([p for p, _ in stops], dtype=np.float32)
    colours = np.array([c for _, c in stops], dtype=np.float32) / 255.0
    return np.stack([np.interp(t, positions, colours[:, c]) for c in range(3)], axis=-1)


def _cloud_density(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Fractal value noise, stretched sideways like clouds seen at a low angle, 0..1."""
    noise = np.zeros((height, width), dtype=np.float32)
    weight_sum = 0.0
    for octave in range(5):
        cells_x, cells_y = 3 * 2**octave, max(2, 3 * 2**octave // 3)
        grid = rng.random((cells_y, cells_x)).astype(np.float32)
        weight = 0.55**octave
        noise += weight * resize_plane(grid, (width, height), Image.Resampling.BICUBIC)
        weight_sum += weight
    noise /= weight_sum
    return smoothstep(0.58, 0.8, noise)


def render_sky(style: str, size: tuple[int, int], *, horizon: float, seed: int = 7) -> Image.Image:
    """A sky of `style` at `size`; `horizon` is the skyline's height as a fraction of the frame."""
    width, height = size
    scale = min(1.0, DRAW_EDGE / max(size))
    small_w, small_h = max(2, round(width * scale)), max(2, round(height * scale))
    rows = np.arange(small_h, dtype=np.float32) / small_h
    t = np.clip(rows / max(horizon, 0.05), 0.0, 1.0) ** 0.85
    sky = np.broadcast_to(_gradient(style, t)[:, None, :], (small_h, small_w, 3)).copy()
    if style in CLOUD_COLOURS:
        density = _cloud_density(small_w, small_h, np.random.default_rng(seed))[..., None]
        # Clouds thin out toward the skyline, and are a little darker underneath.
        density *= (1.0 - 0.6 * t[:, None, None]) * CLOUD_AMOUNT[style]
        cloud = np.array(CLOUD_COLOURS[style], dtype=np.float32) / 255.0 * (0.9 + 0.1 * (1.0 - t[:, None, None]))
        sky = sky * (1.0 - density) + cloud * density
    image = to_image(sky).resize(size, Image.Resampling.BICUBIC)
    # ±1 level of noise hides 8-bit banding in the smooth gradient.
    noise = Image.effect_noise(size, 1.2).convert("L")
    return ImageChops.add(image, Image.merge("RGB", (noise, noise, noise)), scale=1.0, offset=-128)
