"""The style presets on offer, with their parameter schema and which engines can run them."""

from typing import Any

from pydantic import BaseModel

from luster_app.api.deps import Ctx, DbSession, api_router
from luster_app.services.presets import list_presets

router = api_router(tags=["presets"])


class PresetOut(BaseModel):
    name: str
    title: str
    description: str
    params_schema: dict[str, Any]
    engines: list[str]  # engines able to run it: "openai", "classic"
    available: bool  # whether this deployment's engine can run it
    prompt_version: int | None  # the active prompt template's version


class PresetsOut(BaseModel):
    engine: str  # the engine this deployment runs jobs on
    presets: list[PresetOut]


@router.get("/presets", response_model=PresetsOut)
def presets(context: Ctx, session: DbSession) -> PresetsOut:
    """Every preset with its parameters' JSON schema; `available` says if this deployment can run it."""
    engine = context.image_engine.name
    return PresetsOut(engine=engine, presets=[PresetOut(**p) for p in list_presets(session=session, engine=engine)])
