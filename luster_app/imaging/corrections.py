"""The corrections a job can ask for on top of its preset, run before the engine sees the photo.

Each is a switch in the job's params (`straighten_verticals`, ...), and each says in words what
it did or why it did nothing; the worker records those notes on the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from luster_app.imaging.lens import camera_info, correct_distortion
from luster_app.imaging.privacy import blur_faces_and_plates
from luster_app.imaging.verticals import straighten

# In the order they run: the lens first (verticals are only straight lines once it is undone),
# then the tilt, then privacy on the pixels that will be delivered.
CORRECTIONS = ("correct_lens", "straighten_verticals", "auto_privacy")


@dataclass(frozen=True)
class Corrected:
    image: Image.Image
    changed: bool
    notes: tuple[str, ...] = ()
    only: bool = False  # the corrections are all the job asks for: no engine edit follows
    faces_blurred: int | None = None  # both None when privacy was not asked for
    plates_blurred: int | None = None

    def outcome(self) -> dict[str, Any] | None:
        """What to keep on the job (Job.corrections), or None when no correction was asked for."""
        if not self.notes:
            return None
        blurred = None if self.faces_blurred is None else self.faces_blurred + (self.plates_blurred or 0)
        return {"notes": list(self.notes), "changed": self.changed, "regions_blurred": blurred,
                "faces_blurred": self.faces_blurred, "plates_blurred": self.plates_blurred}


def asked(params: dict[str, Any]) -> bool:
    """Whether these params switch on any correction."""
    return any(params.get(name) for name in CORRECTIONS)


def corrections_only(preset: str, params: dict[str, Any]) -> bool:
    """Whether the job asks for corrections and nothing else: Enhance at strength 0."""
    return preset == "enhance" and float(params.get("strength", 1)) == 0 and asked(params)


def nothing_changed(corrected: Corrected) -> str:
    """Why a corrections-only job ends with no output and no charge, in the photographer's words."""
    found = "; ".join(corrected.notes)
    return f"{found[:1].upper()}{found[1:]}: nothing was changed, so there is no new photo."


def correct(image: Image.Image, preset: str, params: dict[str, Any], *, original: bytes) -> Corrected:
    """The photo with every correction the params switch on, and a note from each; `original`
    is the uploaded file, whose EXIF names the camera and lens."""
    changed, notes, faces, plates = False, [], None, None
    if params.get("correct_lens"):
        lens = correct_distortion(image, camera_info(original))
        image, changed = lens.image, lens.changed
        notes.append(lens.note)
    if params.get("straighten_verticals"):
        result = straighten(image)
        image, changed = result.image, changed or result.changed
        notes.append(result.note)
    if params.get("auto_privacy"):
        private = blur_faces_and_plates(image)
        image, changed = private.image, changed or private.changed
        faces, plates = len(private.faces), len(private.plates)
        notes.append(private.note)
    return Corrected(image, changed, tuple(notes), corrections_only(preset, params), faces, plates)
