"""The corrections a job can ask for on top of its preset, run before the engine sees the photo.

Each is a switch in the job's params (`straighten_verticals`, ...), and each says in words what
it did or why it did nothing; the worker records those notes on the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from luster_app.imaging.verticals import straighten

CORRECTIONS = ("straighten_verticals",)


@dataclass(frozen=True)
class Corrected:
    image: Image.Image
    changed: bool
    notes: tuple[str, ...] = ()
    only: bool = False  # the corrections are all the job asks for: no engine edit follows

    def outcome(self) -> dict[str, Any] | None:
        """What to keep on the job (Job.corrections), or None when no correction was asked for."""
        return {"notes": list(self.notes), "changed": self.changed} if self.notes else None


def asked(params: dict[str, Any]) -> bool:
    """Whether these params switch on any correction."""
    return any(params.get(name) for name in CORRECTIONS)


def corrections_only(preset: str, params: dict[str, Any]) -> bool:
    """Whether the job asks for corrections and nothing else: Enhance at strength 0."""
    return preset == "enhance" and float(params.get("strength", 1)) == 0 and asked(params)


def nothing_changed(corrected: Corrected) -> str:
    """Why a corrections-only job ends with no output and no charge, in the photographer's words."""
    found = "; ".join(corrected.notes).capitalize()
    return f"{found}: the photo needs none of the corrections asked for, so it was left as it is."


def correct(image: Image.Image, preset: str, params: dict[str, Any]) -> Corrected:
    """The photo with every correction the params switch on, and a note from each."""
    changed, notes = False, []
    if params.get("straighten_verticals"):
        result = straighten(image)
        image, changed = result.image, changed or result.changed
        notes.append(result.note)
    return Corrected(image, changed, tuple(notes), corrections_only(preset, params))
