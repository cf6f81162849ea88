"""Image engines: OpenAI image edits in production, the local classic engine by default."""

from luster_app.engines.base import EngineError, EngineRequest, ImageEngine

__all__ = ["EngineError", "EngineRequest", "ImageEngine"]
