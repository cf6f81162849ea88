"""What each OpenAI image-edit model accepts: sizes, quality levels, input fidelity. One table.

From the `size`, `quality` and `input_fidelity` documentation of `images.edit` (openai SDK 3.x,
November 2026): the GPT Image 1.x models take three fixed sizes; GPT Image 2 and later take
any WIDTHxHEIGHT with both sides multiples of 16, an aspect ratio within 1:3..3:1, at most
3840 on an edge and 3840x2160 pixels in all (above 2560x1440 is "experimental", so we stay
at or below it), and at least about 0.66 megapixels. `input_fidelity` is accepted by
gpt-image-1.5 (high/low); gpt-image-1-mini supports only the default; GPT Image 2 and later
must omit it. `xhigh` and `max` quality exist from GPT Image 2.5.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)

STANDARD_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
BASE_QUALITIES = ("low", "medium", "high", "auto")
# Sizes chosen for custom-size models are this close to the photo's aspect ratio or closer;
# the remainder is padding that is cropped off again.
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class ImageModelSpec:
    """The request rules of one image-edit model."""

    fixed_sizes: tuple[tuple[int, int], ...] = ()  # empty: any size within the limits below
    size_multiple: int = 16
    min_pixels: int = 655_360
    max_pixels: int = 2560 * 1440
    max_edge: int = 3840
    max_aspect: float = 3.0
    qualities: tuple[str, ...] = BASE_QUALITIES
    default_quality: str = "high"
    input_fidelity: str | None = None  # sent as is; None: the parameter is omitted

    @property
    def custom_sizes(self) -> bool:
        return not self.fixed_sizes


_GPT_IMAGE_1 = ImageModelSpec(fixed_sizes=STANDARD_SIZES, input_fidelity="high")
_GPT_IMAGE_1_MINI = ImageModelSpec(fixed_sizes=STANDARD_SIZES)
_GPT_IMAGE_2 = ImageModelSpec()
_GPT_IMAGE_2_5 = ImageModelSpec(qualities=(*BASE_QUALITIES, "xhigh", "max"))

MODELS: dict[str, ImageModelSpec] = {
    "gpt-image-1.5": _GPT_IMAGE_1,
    "gpt-image-1-mini": _GPT_IMAGE_1_MINI,
    "gpt-image-2": _GPT_IMAGE_2,
    "gpt-image-2-2026-04-21": _GPT_IMAGE_2,
    "gpt-image-2.5-sunburst": _GPT_IMAGE_2_5,
    "gpt-image-2.5-sunburst-2026-09-08": _GPT_IMAGE_2_5,
    "gpt-image-2.5-flare": _GPT_IMAGE_2_5,
    "gpt-image-2.5-flare-2026-09-08": _GPT_IMAGE_2_5,
    "gpt-image-2.6-sunburst": _GPT_IMAGE_2_5,
    "gpt-image-2.6-flare": _GPT_IMAGE_2_5,
}
# A model we do not know (a compatible server's, or a newer one): the standard sizes and
# parameters every GPT image model accepts.
FALLBACK = _GPT_IMAGE_1_MINI


def model_spec(model: str) -> ImageModelSpec:
    """The rules for `model`, or the conservative fallback for an unknown name."""
    spec = MODELS.get(model)
    if spec is None:
        log.warning("image model %r is not in the table; using the standard sizes only", model)
        return FALLBACK
    return spec


def _aspect_error(size: tuple[int, int], aspect: float) -> float:
    return abs(math.log((size[0] / size[1]) / aspect))


def choose_size(spec: ImageModelSpec, size: tuple[int, int]) -> tuple[int, int]:
    """The canvas to ask for: the model's closest fit to the photo's aspect ratio, as large as
    the photo (within the model's limits) and no larger."""
    width, height = size
    aspect = width / height
    if not spec.custom_sizes:
        return min(spec.fixed_sizes, key=lambda s: (_aspect_error(s, aspect), -s[0] * s[1]))
    aspect = min(max(aspect, 1 / spec.max_aspect), spec.max_aspect)
    target = min(max(width * height, spec.min_pixels), spec.max_pixels)
    step = spec.size_multiple
    candidates = []
    for canvas_h in range(step, spec.max_edge + 1, step):
        canvas_w = max(step, round(canvas_h * aspect / step) * step)
        pixels = canvas_w * canvas_h
        if canvas_w <= spec.max_edge and spec.min_pixels <= pixels <= spec.max_pixels:
            candidates.append((canvas_w, canvas_h))
    # Within the tolerance, a 1% aspect error weighs like 10% fewer pixels than wanted.
    return min(
        candidates,
        key=lambda s: (
            _aspect_error(s, aspect) > ASPECT_TOLERANCE,
            abs(math.log(s[0] * s[1] / target)) + 10 * _aspect_error(s, aspect),
        ),
    )


def size_param(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
