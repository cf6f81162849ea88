"""Image engines: OpenAI image edits in production, the local classic engine by default."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from luster_app.engines.base import EngineError, EngineRequest, ImageEngine

if TYPE_CHECKING:
    from luster_app.config import Settings

__all__ = ["ENGINE_NAMES", "EngineError", "EngineRequest", "ImageEngine", "build_engine", "engines_for"]

ENGINE_NAMES = ("openai", "classic")
LEASE_SHARE = 0.8  # the engine call may use at most this share of the job lease

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> ImageEngine:
    """OpenAI image edits when OPENAI_API_KEY is set, otherwise the local classic engine."""
    if settings.uses_openai:
        from luster_app.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            model=settings.openai_image_model,
            timeout=engine_timeout(settings),
            quality=settings.openai_image_quality,
        )
    from luster_app.engines.classic import ClassicEngine

    return ClassicEngine()


def engine_timeout(settings: Settings) -> float:
    """OPENAI_TIMEOUT_SECONDS, kept below the job lease: a call still running when the lease
    expires would let another worker claim the job and pay for the same edit again."""
    limit = LEASE_SHARE * settings.job_lease_seconds
    if settings.openai_timeout_seconds > limit:
        log.warning("OPENAI_TIMEOUT_SECONDS is not below the job lease; using %.0f s", limit)
        return limit
    return settings.openai_timeout_seconds


def engines_for(preset: str) -> list[str]:
    """The names of the engines that can run `preset` (the classic engine cannot declutter)."""
    from luster_app.engines.classic import ClassicEngine
    from luster_app.engines.openai_engine import OpenAIEngine

    return [engine.name for engine in (OpenAIEngine, ClassicEngine) if preset in engine.presets]
