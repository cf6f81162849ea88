"""The engine interface the worker calls, and the error classification it retries on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image


class EngineError(Exception):
    """An engine call that did not produce an image.

    `transient` errors (rate limit, 5xx, timeout, connection) are retried by the job with
    backoff; permanent ones (moderation, invalid image, unknown model, unsupported preset)
    fail the job at once. `message` is shown to the photographer; `code` is stable.
    """

    def __init__(self, code: str, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class EngineRequest:
    """One edit: an upright, metadata-free sRGB image at the original's resolution."""

    image: Image.Image
    preset: str
    params: dict[str, Any] = field(default_factory=dict)
    prompt_text: str = ""
    label: str = ""  # how the photographer knows the photo (its file name), for error messages


class ImageEngine(Protocol):
    name: str  # "openai" or "classic"
    model: str  # the model id, or "" for the classic engine
    presets: frozenset[str]  # the presets this engine can run

    def supports(self, preset: str) -> bool:
        """Whether `edit` can run this preset (else it raises EngineError "preset_unsupported")."""
        ...

    def edit(self, request: EngineRequest) -> Image.Image:
        """The edited image (RGB) at the request image's size and aspect ratio, or EngineError."""
        ...
