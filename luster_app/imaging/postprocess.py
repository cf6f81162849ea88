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

from luster_app.imaging.arrays import blur, smoothstep, to_float

Box = tuple[int, int, int, int]  # left, top, right, bottom

# Window of the local colour fit, in pixels of the model's image: tone, colour and light
# changes are measured at this scale; finer texture comes from the original.
TRANSFER_SIGMA = 2.0
# Regularises the fit in flat windows toward a plain gain (exposure-like change).
FIT_EPSILON = 1e-4
GAIN_LIMITS = (0.0, 8.0)
# Keeps the gain stable in near-black areas, where a tiny difference would be a huge ratio.
GAIN_FLOOR = 0.004
# Mean squared fit error (0..1 values) above which the model drew something new there.
RESIDUAL_LIMITS = (2e-4, 1.5e-3)
STRIP_ROWS = 256


def fit_within(size: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    """The largest size with `size`'s aspect ratio that fits inside `canvas`."""
    width, height = size
    scale = min(canvas[0] / width, canvas[1] / height)
    return min(canvas[0], max(1, round(width * scale))), min(canvas[1], max(1, round(height * scale)))


def pad_to_canvas(image: Image.Image, canvas: tuple[int, int]) -> tuple[Image.Image, Image.Image, Box]:
    """(padded canvas image, the scaled photo alone, where the photo sits on the canvas)."""
    content_size = fit_within(image.size, canvas)
    content = (image if image.mode == "RGB" else image.convert("RGB")).resize(content_size, Image.Resampling.LANCZOS)
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


def local_colour_fit(sent: np.ndarray, edited: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel and channel, `edited ≈ gain * sent + offset` fitted over a window (a guided
    filter with the sent photo as guide), and a 0..1 weight that is 1 where that fit explains
    the edit and 0 where the model drew new structure (clouds, removed objects) or moved pixels."""
    mean_sent, mean_edited = blur(sent, sigma), blur(edited, sigma)
    var_sent = np.maximum(blur(sent * sent, sigma) - mean_sent**2, 0.0)
    var_edited = np.maximum(blur(edited * edited, sigma) - mean_edited**2, 0.0)
    covariance = blur(sent * edited, sigma) - mean_sent * mean_edited
    plain_gain = (mean_edited + GAIN_FLOOR) / (mean_sent + GAIN_FLOOR)
    gain = np.clip((covariance + FIT_EPSILON * plain_gain) / (var_sent + FIT_EPSILON), *GAIN_LIMITS)
    offset = mean_edited - gain * mean_sent
    residual = np.maximum(var_edited - 2 * gain * covariance + gain**2 * var_sent, 0.0).mean(axis=-1)
    fit = 1.0 - smoothstep(RESIDUAL_LIMITS[0], RESIDUAL_LIMITS[1], blur(residual, sigma))
    # Second averaging step of the guided filter: smooth coefficients, no blocky windows.
    return blur(gain, sigma), blur(offset, sigma), fit.astype(np.float32)


def _plane(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.float32), mode="F")


def transfer_edit(original: Image.Image, sent: Image.Image, edited: Image.Image) -> Image.Image:
    """The model's edit applied to the full-resolution `original` (see `transfer_edit_measured`)."""
    return transfer_edit_measured(original, sent, edited)[0]


def transfer_edit_measured(original: Image.Image, sent: Image.Image, edited: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The model's edit applied to the full-resolution `original`, at the original's size.

    `sent` is the downsized photo the model saw (without padding), `edited` its answer cropped
    to the same area. Method (guided upsampling): in small windows of the model's image we fit
    how the model mapped colours, `edited ≈ gain × sent + offset` per channel; those smooth
    coefficients are upsampled and applied to the original's own pixels. Tone, colour and
    light then change as the model changed them (exposure is a gain, haze or glow an offset;
    the fit covers both), while the original's full-resolution detail is kept, which a plain
    upscale of the model's few megapixels would blur. Where the fit fails because the model
    changed the structure itself (a new sky with clouds, a removed bin) or did not keep pixels
    aligned, carrying the original's detail would ghost the old content, so there a
    high-quality (Lanczos) upscale of the model's pixels is used; a per-pixel weight blends the
    two. When the original is no larger than the model's answer, its pixels are simply resized.

    Also returns that weight (at the model's resolution, or half of it): 1 where the model only
    changed tone and colour, 0 where it drew new structure. Honest edits measure it.
    """
    size = original.size
    edited = edited.convert("RGB")
    if edited.size != sent.size:
        edited = edited.resize(sent.size, Image.Resampling.LANCZOS)
    # The coefficients are smooth: on a large answer, half its resolution measures them as well.
    factor = 2 if sent.width * sent.height > 1_500_000 else 1
    low_sent, low_edited = to_float(sent.reduce(factor)), to_float(edited.reduce(factor))
    gain, offset, fit = local_colour_fit(low_sent, low_edited, TRANSFER_SIGMA / factor)
    if size[0] * size[1] <= sent.width * sent.height * 1.05:
        return edited.resize(size, Image.Resampling.LANCZOS), fit
    planes = [_plane(gain[..., c]) for c in range(3)] + [_plane(offset[..., c] * 255.0) for c in range(3)] + [_plane(fit)]
    plane_width, plane_height = planes[0].size

    width, height = size
    scale_y, plane_scale_y = sent.height / height, plane_height / height
    original_rgb = original.convert("RGB")
    result = np.empty((height, width, 3), dtype=np.uint8)
    # Strips keep memory flat on a 24-megapixel photo; `box` resizes each strip exactly as a
    # whole-image resize would.
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        rows = (width, bottom - top)
        plane_box = (0.0, top * plane_scale_y, float(plane_width), bottom * plane_scale_y)
        fields = [np.asarray(p.resize(rows, Image.Resampling.BILINEAR, box=plane_box)) for p in planes]
        strip_gain, strip_offset, weight = np.stack(fields[:3], -1), np.stack(fields[3:6], -1), fields[6][..., None]
        box = (0.0, top * scale_y, float(sent.width), bottom * scale_y)
        upscaled = np.asarray(edited.resize(rows, Image.Resampling.LANCZOS, box=box), dtype=np.float32)
        detail = np.asarray(original_rgb.crop((0, top, width, bottom)), dtype=np.float32) * strip_gain + strip_offset
        blended = weight * detail + (1.0 - weight) * upscaled
        result[top:bottom] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(result), fit
