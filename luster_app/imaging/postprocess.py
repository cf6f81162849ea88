"""Fitting a photo to what an image model accepts, and bringing the edit back to full size.

Going out: the photo is scaled to fit the model's canvas with its aspect ratio kept, and the
rest of the canvas is filled by mirroring the photo's own edges (a mirror has no hard border
for the model to "fix", and its content is cropped off again afterwards). Never a square crop,
never a stretch.

Coming back: the model answers at a few megapixels at most; the photographer's original may
have 24. `transfer_edit` applies the model's edit to the full-resolution original instead of
upscaling the model's pixels (see its docstring for the method and why).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from luster_app.imaging.arrays import blur, luminance, smoothstep, to_float

Box = tuple[int, int, int, int]  # left, top, right, bottom

# Low-frequency band of the transfer, in pixels of the model's image: tone, colour and light
# changes live below it; fine texture above it comes from the original.
TRANSFER_SIGMA = 2.0
GAIN_LIMITS = (1 / 8, 8.0)
# Keeps the ratio stable in near-black areas, where a tiny difference would be a huge gain.
GAIN_FLOOR = 0.004
STRIP_ROWS = 256


def fit_within(size: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    """The largest size with `size`'s aspect ratio that fits inside `canvas`."""
    width, height = size
    scale = min(canvas[0] / width, canvas[1] / height)
    return min(canvas[0], max(1, round(width * scale))), min(canvas[1], max(1, round(height * scale)))


def pad_to_canvas(image: Image.Image, canvas: tuple[int, int]) -> tuple[Image.Image, Image.Image, Box]:
    """(padded canvas image, the scaled photo alone, where the photo sits on the canvas)."""
    content_size = fit_within(image.size, canvas)
    content = image.convert("RGB").resize(content_size, Image.Resampling.LANCZOS)
    left = (canvas[0] - content_size[0]) // 2
    top = (canvas[1] - content_size[1]) // 2
    pad = ((top, canvas[1] - content_size[1] - top), (left, canvas[0] - content_size[0] - left), (0, 0))
    padded = Image.fromarray(np.pad(np.asarray(content), pad, mode="symmetric"))
    return padded, content, (left, top, left + content_size[0], top + content_size[1])


def crop_to_content(result: Image.Image, box: Box, canvas: tuple[int, int]) -> Image.Image:
    """The part of the model's answer that covers the photo, even if it came back at another size."""
    scale_x, scale_y = result.width / canvas[0], result.height / canvas[1]
    left, top, right, bottom = box
    region = (round(left * scale_x), round(top * scale_y), round(right * scale_x), round(bottom * scale_y))
    return result.convert("RGB").crop(region)


def _structure_agreement(edited: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """0..1 per pixel: 1 where the model kept the photo's structure (only tone/colour changed),
    0 where it drew something new or moved things (new clouds, removed objects)."""
    lum_edited, lum_sent = luminance(edited), luminance(sent)
    detail_edited = lum_edited - blur(lum_edited, TRANSFER_SIGMA)
    detail_sent = lum_sent - blur(lum_sent, TRANSFER_SIGMA)
    window = 2 * TRANSFER_SIGMA
    covariance = blur(detail_edited * detail_sent, window)
    var_edited, var_sent = blur(detail_edited**2, window), blur(detail_sent**2, window)
    correlation = covariance / np.sqrt(var_edited * var_sent + 1e-8)
    # Both flat (a smooth sky or wall that stayed smooth): no structure to disagree about.
    noise_floor = 2e-5
    flat = (1 - smoothstep(noise_floor, 4 * noise_floor, var_edited)) * (1 - smoothstep(noise_floor, 4 * noise_floor, var_sent))
    return np.maximum(smoothstep(0.25, 0.65, correlation), flat).astype(np.float32)


def _plane(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.float32), mode="F")


def transfer_edit(original: Image.Image, sent: Image.Image, edited: Image.Image) -> Image.Image:
    """The model's edit applied to the full-resolution `original`, at the original's size.

    `sent` is the downsized photo the model saw (without padding), `edited` its answer cropped
    to the same area. Method: the ratio between the low-frequency bands of `edited` and `sent`
    is upsampled and multiplied into the original, so tone, colour and light change exactly as
    the model changed them while the original's full-resolution detail is kept. A ratio (not a
    difference) because gamma-encoded values scale by the same factor as linear light under an
    exposure change, so darkening (dusk) also darkens texture instead of leaving it bright.
    Where the model changed the structure itself (a new sky with clouds, a removed bin) or did
    not keep pixels aligned, adding back the original's detail would ghost the old content, so
    there a high-quality (Lanczos) upscale of the model's pixels is used instead; the two are
    blended by a local structural-agreement weight. When the original is no larger than what the
    model returned, the model's pixels are simply resized.
    """
    size = original.size
    edited = edited.convert("RGB")
    if edited.size != sent.size:
        edited = edited.resize(sent.size, Image.Resampling.LANCZOS)
    if size[0] * size[1] <= sent.width * sent.height * 1.05:
        return edited.resize(size, Image.Resampling.LANCZOS)

    low_edited, low_sent = to_float(edited), to_float(sent)
    agreement = _structure_agreement(low_edited, low_sent)
    gain = (blur(low_edited, TRANSFER_SIGMA) + GAIN_FLOOR) / (blur(low_sent, TRANSFER_SIGMA) + GAIN_FLOOR)
    gain = np.clip(gain, *GAIN_LIMITS)
    gain_planes = [_plane(gain[..., c]) for c in range(3)]
    agreement_plane = _plane(agreement)

    width, height = size
    scale_y = sent.height / height
    original_rgb = original.convert("RGB")
    result = np.empty((height, width, 3), dtype=np.uint8)
    # Strips keep memory flat on a 24-megapixel photo; `box` resizes each strip exactly as a
    # whole-image resize would.
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        box = (0.0, top * scale_y, float(sent.width), bottom * scale_y)
        rows = (width, bottom - top)
        strip_gain = np.stack(
            [np.asarray(p.resize(rows, Image.Resampling.BILINEAR, box=box)) for p in gain_planes], axis=-1
        )
        weight = np.asarray(agreement_plane.resize(rows, Image.Resampling.BILINEAR, box=box))[..., None]
        upscaled = np.asarray(edited.resize(rows, Image.Resampling.LANCZOS, box=box), dtype=np.float32)
        detail = np.asarray(original_rgb.crop((0, top, width, bottom)), dtype=np.float32) * strip_gain
        blended = weight * detail + (1.0 - weight) * upscaled
        result[top:bottom] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(result)
