"""OpenAI image edits through the official client, with errors classified for the job's retries.

Who retries: the job, never the client. The client is built with `max_retries=0`, so a paid
edit is sent once per attempt; the worker decides from `EngineError.transient` whether and
when (honouring `retry_after`) to try again, and records every attempt. The client's timeout
comes from OPENAI_TIMEOUT_SECONDS, which the settings keep below the job lease.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from luster_app.engines.alteration import Alteration, allowed_region, grid_size, measure, on_grid
from luster_app.engines.base import EngineError, EngineRequest
from luster_app.engines.masks import ANALYSIS_EDGE
from luster_app.engines.openai_models import ImageModelSpec, choose_size, model_spec, size_param
from luster_app.imaging.arrays import downsized, to_float
from luster_app.imaging.encode import encode_jpeg
from luster_app.imaging.postprocess import crop_to_content, pad_to_canvas, transfer_edit_measured
from luster_app.presets import PRESETS

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Error codes OpenAI uses when its safety system declines a request.
MODERATION_CODES = {"moderation_blocked", "content_policy_violation"}
INVALID_IMAGE_CODES = {"invalid_image", "invalid_image_format", "image_too_large", "invalid_image_file"}
NOTHING_CHARGED = "Nothing was charged."


class OpenAIEngine:
    """Edits through OpenAI's `images.edit`; outputs at the original's full resolution."""

    name = "openai"
    presets = frozenset(PRESETS)

    def __init__(
        self, *, api_key: str, model: str, timeout: float, base_url: str = "", quality: str = ""
    ) -> None:
        self.model = model
        self.spec: ImageModelSpec = model_spec(model)
        if quality and quality not in self.spec.qualities:
            raise ValueError(f"OPENAI_IMAGE_QUALITY={quality!r} is not one of {self.spec.qualities} for {model}")
        self.quality = quality or self.spec.default_quality
        self._api_key = api_key
        self._base_url = base_url or DEFAULT_BASE_URL
        self._timeout = timeout

    @functools.cached_property
    def client(self) -> openai.OpenAI:
        import openai

        return openai.OpenAI(
            api_key=self._api_key, base_url=self._base_url, timeout=self._timeout, max_retries=0
        )

    def supports(self, preset: str) -> bool:
        return preset in self.presets

    def request_params(self, size: tuple[int, int]) -> dict[str, Any]:
        """The model-specific part of the edit call, from the model table."""
        params: dict[str, Any] = {"model": self.model, "size": size_param(size), "quality": self.quality, "n": 1}
        if self.spec.input_fidelity:
            params["input_fidelity"] = self.spec.input_fidelity
        return params

    def edit(self, request: EngineRequest) -> Image.Image:
        """The edited photo at the request image's size, or EngineError (transient or not)."""
        return self.edit_measured(request)[0]

    def edit_measured(self, request: EngineRequest) -> tuple[Image.Image, Alteration]:
        """`edit`, and what the model redrew inside and outside the preset's region."""
        if not request.prompt_text.strip():
            raise _fail("prompt_missing", "No prompt text for this edit; the job has no prompt version.")
        # The job hands over an upright, metadata-free image; this makes sure of it anyway.
        original = ImageOps.exif_transpose(request.image).convert("RGB")
        canvas = choose_size(self.spec, original.size)
        padded, sent, box = pad_to_canvas(original, canvas)
        upload = encode_jpeg(padded, quality=95)  # pixels and an sRGB profile, nothing else
        try:
            response = self.client.images.edit(
                image=("photo.jpg", upload, "image/jpeg"),
                prompt=request.prompt_text,
                output_format="png",
                **self.request_params(canvas),
            )
        except Exception as exc:  # noqa: BLE001  (every failure becomes a classified EngineError)
            raise classify_error(exc, request=request, model=self.model, timeout=self._timeout) from exc
        edited = _decode_result(response)
        result, fit = transfer_edit_measured(original, sent, crop_to_content(edited, box, canvas))
        grid = grid_size(original.size)
        allowed = allowed_region(request.preset, to_float(downsized(original, ANALYSIS_EDGE)), grid)
        # Drew new structure: where the colour fit explains less than half of the change.
        redrawn = on_grid(fit < 0.5, grid)
        return result, measure(preset=request.preset, redrawn=redrawn, allowed=allowed, measured_by="fit")


def _decode_result(response: Any) -> Image.Image:
    try:
        data = base64.b64decode(response.data[0].b64_json, validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (AttributeError, IndexError, TypeError, binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise _retry("engine_bad_response", "The AI engine answered without a readable image") from exc
    return image.convert("RGB")


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _photo(request: EngineRequest) -> str:
    return f"“{request.label}”" if request.label else "this photo"


def _retry(code: str, message: str, retry_after: float | None = None) -> EngineError:
    # What happened only: the retry policy says whether it is retried or what to do (worker/retry.py).
    return EngineError(code, f"{message}.", transient=True, retry_after=retry_after)


def _fail(code: str, message: str) -> EngineError:
    return EngineError(code, f"{message} {NOTHING_CHARGED}", transient=False)


def classify_error(exc: Exception, *, request: EngineRequest, model: str, timeout: float) -> EngineError:
    """The EngineError the job acts on for a failed `images.edit` call."""
    import openai

    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return _retry("engine_timeout", f"The AI engine did not answer within {timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return _retry("engine_unreachable", "Could not reach the AI engine")
    if not isinstance(exc, openai.APIStatusError):
        log.exception("unexpected error from the image edit call")
        return _retry("engine_error", "The AI engine failed unexpectedly")

    status, code = exc.status_code, (exc.code or "")
    log.warning("image edit failed: status=%s code=%s request_id=%s", status, code or "-", exc.request_id or "-")
    retry_after = retry_after_seconds(exc.response.headers)
    detail = (exc.message or "")[:300]
    photo = _photo(request)
    if status == 429 and code == "insufficient_quota":
        return _fail("engine_quota", "The AI engine's account is out of quota; an admin must top it up.")
    if status == 429:
        return _retry("rate_limited", "The AI engine is busy (rate limit)", retry_after)
    if status >= 500 or status in (408, 409):
        return _retry("engine_unavailable", f"The AI engine had a temporary problem ({status})", retry_after)
    if code in MODERATION_CODES or "safety system" in detail.lower():
        return EngineError(
            "moderation_blocked",
            f"OpenAI's safety system declined to edit {photo} with the {request.preset} preset. "
            f"{NOTHING_CHARGED} Another preset may work for this photo.",
            transient=False,
        )
    if status == 404 or code == "model_not_found":
        return _fail(
            "model_not_found",
            f"The image model {model!r} is not available to this OpenAI account; "
            "an admin must set OPENAI_IMAGE_MODEL to a current model.",
        )
    if status in (401, 403):
        return _fail("engine_auth", f"The AI engine refused our credentials ({status}); an admin must check OPENAI_API_KEY.")
    if code in INVALID_IMAGE_CODES:
        return _fail("invalid_image", f"The AI engine could not read {photo}: {detail}")
    return _fail("engine_rejected", f"The AI engine rejected the edit of {photo}: {detail}")
