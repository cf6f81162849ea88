"""A bracket job's first step: fuse the group's frames into its merged photo, within the
worker's pixel budget and CPU slots."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass

import numpy as np
from PIL import Image

from luster_app.engines.base import EngineError
from luster_app.imaging import encode_jpeg, load_normalised
from luster_app.imaging.brackets import MIN_FRAMES, NOT_ONE_BRACKET, NotOneBracket, merge_bracket
from luster_app.models import Asset, Job
from luster_app.storage.base import Storage
from worker.pipeline import ImageLimits, megapixels, thumbnail

# Peak memory of a merge per megapixel of its frames, in decoded-photo megapixels (3 bytes each):
# Mertens holds each frame as float32 with its weight map and Laplacian pyramids (bench/brackets.py
# measures about 37 bytes per frame pixel).
MERGE_WORKING_SET = 13

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergedPhoto:
    """The group's frames fused, encoded as the group's original, with its thumbnail."""

    jpeg: bytes
    width: int
    height: int
    thumb: bytes
    thumb_width: int
    thumb_height: int


def merge_frames(job: Job, frames: list[Asset], *, storage: Storage, limits: ImageLimits) -> MergedPhoto:
    """Decode, align and fuse the frames; EngineError (permanent, uncharged) if they are not one bracket."""
    if len(frames) < MIN_FRAMES:
        raise EngineError("not_one_bracket", f"{NOT_ONE_BRACKET} Fewer than {MIN_FRAMES} of its photos are left.", transient=False)
    # A merge larger than the whole budget is made from frames scaled to fit it (aspect kept), never
    # past it: a worker killed for memory would take its other jobs down with it, again on each retry.
    needed = sum(megapixels(frame) for frame in frames) * MERGE_WORKING_SET
    fit = min(1.0, limits.budget.total / needed) if needed else 1.0
    if fit < 1.0:
        log.warning("job %s: bracket merged at %.0f%% of its frames' size to fit the worker's image budget "
                    "(WORKER_IMAGE_BUDGET_MEGAPIXELS; %.0f would merge it at full size)", job.id, 100 * math.sqrt(fit), needed)
    with limits.budget.hold(needed * fit), limits.cpu:
        arrays = []
        for frame in frames:
            image = load_normalised(storage.get_bytes(frame.storage_key), max_pixels=limits.max_pixels)
            if fit < 1.0:
                scale = math.sqrt(fit)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.LANCZOS)
            arrays.append(np.asarray(image.convert("RGB")))
            del image
        try:
            fused = merge_bracket(arrays, window_pull=bool(job.params.get("window_pull")))
        except NotOneBracket as exc:
            raise EngineError("not_one_bracket", str(exc), transient=False) from None
        del arrays
        image = Image.fromarray(fused)
        del fused
        jpeg = encode_jpeg(image)
        thumb, thumb_width, thumb_height = thumbnail(image)
        return MergedPhoto(jpeg, image.width, image.height, thumb, thumb_width, thumb_height)


def merged_keys(merged: Asset, job_id: uuid.UUID) -> tuple[str, str]:
    """Where a job stores its merge and its thumbnail: per job, as an upload's are per completion,
    so of two jobs merging one group at once the one not recorded never overwrites the other's."""
    prefix = f"{merged.user_id}/{merged.shoot_id}/{merged.id}"
    return f"{prefix}/merged-{job_id.hex[:16]}.jpg", f"{prefix}/thumb-{job_id.hex[:16]}.jpg"
