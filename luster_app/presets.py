"""The style presets: typed, validated parameters and the prompt text their templates render.

Templates live in the `prompt_versions` table (see services/presets.py); this module holds
only what code must know: each preset's parameters, their JSON schema and the renderer.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from luster_app.services.errors import Invalid


def _switch(default: bool, description: str, on: str, off: str) -> Any:
    """A yes/no parameter whose prompt label says what each choice means."""
    return Field(default, description=description, json_schema_extra={"labels": {"true": on, "false": off}})


# The prompt label for "on" tells the AI the photo arrives already straightened (the worker
# does it first), so the model does not warp it a second time.
VERTICALS = (
    "Make walls and door frames stand upright (the photo is cropped a little to keep clean edges).",
    "Walls and door frames have already been straightened: keep the perspective exactly as it is.",
    "Keep the perspective as it is.",
)


class PresetParams(BaseModel):
    """Base of every preset's parameters: unknown keys are an error, not silently ignored.

    The corrections (imaging/corrections.py) are parameters of every preset, run on both
    engines before the edit, so the AI engine sees the corrected photo.
    """

    model_config = ConfigDict(extra="forbid")

    correct_lens: bool = _switch(
        False, "Undo the lens's barrel distortion, from the camera and lens the photo names (lensfun profiles).",
        "The lens's distortion has been corrected.", "Lens distortion is left as it is.",
    )
    straighten_verticals: bool = _switch(False, *VERTICALS)
    auto_privacy: bool = _switch(
        False, "Blur faces and licence plates so no one can be recognised "
        "(the shoot's setting unless changed here).",
        "Faces and licence plates in the photo are blurred.", "Faces and licence plates are left as they are.",
    )


class EnhanceParams(PresetParams):
    strength: float = Field(0.7, ge=0.0, le=1.0, description="How strongly to correct exposure, white balance and contrast.")
    straighten_verticals: bool = _switch(True, *VERTICALS)


class DuskParams(PresetParams):
    intensity: float = Field(0.8, ge=0.2, le=1.0, description="How far toward blue hour the light goes.")
    window_glow: float = Field(0.7, ge=0.0, le=1.0, description="How warmly windows and lamps glow.")


class SkyParams(PresetParams):
    style: Literal["clear_blue", "soft_clouds", "sunset"] = Field(
        "clear_blue",
        description="The new sky.",
        json_schema_extra={"labels": {
            "clear_blue": "a clear, deep blue sky that fades lighter toward the horizon",
            "soft_clouds": "a bright blue sky with a few soft white clouds",
            "sunset": "a warm sunset sky, orange and pink near the horizon and blue above",
        }},
    )


class LawnParams(PresetParams):
    strength: float = Field(0.8, ge=0.0, le=1.0, description="How far dry or patchy grass is turned green and even.")


class DeclutterParams(PresetParams):
    level: Literal["light", "thorough"] = Field(
        "light",
        description="What counts as clutter.",
        json_schema_extra={"labels": {
            "light": "loose items such as bins, hoses, cables, toys and litter",
            "thorough": "loose items such as bins, hoses, cables, toys and litter, and temporary signs",
        }},
    )


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    params: type[PresetParams]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("enhance", "Enhance", "Exposure, white balance, clarity and straight verticals.", EnhanceParams),
        Preset("dusk", "Day to dusk", "A blue-hour twilight look with warm window glow.", DuskParams),
        Preset("sky", "Sky replacement", "Swap a dull sky for clear blue, soft clouds or a sunset.", SkyParams),
        Preset("lawn", "Lawn cleanup", "Dry or patchy grass made green and even.", LawnParams),
        Preset("declutter", "Declutter", "Small clutter removed (AI engine only).", DeclutterParams),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or Invalid (422) naming the ones that exist."""
    preset = PRESETS.get(name)
    if preset is None:
        raise Invalid(f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)}.")
    return preset


def validate_params(preset: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The preset's parameters with defaults filled in, or Invalid (422) saying what is wrong."""
    model = get_preset(preset).params
    if params is not None and not isinstance(params, dict):
        raise Invalid("params must be a JSON object.")
    try:
        return model.model_validate(params or {}).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}" for error in exc.errors()
        )
        raise Invalid(f"Invalid parameters for {preset}: {problems}.") from exc


def params_schema(preset: str) -> dict[str, Any]:
    """The JSON schema of a preset's parameters (with defaults, ranges and choice labels)."""
    return get_preset(preset).params.model_json_schema()


class _TemplateFormatter(string.Formatter):
    """str.format with plain names only: no attribute or index access from a stored template."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise Invalid(f"Template field {{{field_name}}} is not a plain parameter name.")
        if field_name not in kwargs:
            raise Invalid(f"Template field {{{field_name}}} is not a parameter of this preset.")
        return kwargs[field_name], field_name


@functools.cache
def _labels(preset: str) -> dict[str, dict[str, str]]:
    """Each labelled parameter's prompt labels (choice → words), read from its schema once: every
    job create renders a prompt, and building the JSON schema takes about a millisecond."""
    properties = params_schema(preset).get("properties", {})
    return {name: prop["labels"] for name, prop in properties.items() if "labels" in prop}


def _template_values(preset: str, params: dict[str, Any]) -> dict[str, Any]:
    values = dict(params)
    for name, labels in _labels(preset).items():
        if name in params:
            key = str(params[name]).lower() if isinstance(params[name], bool) else str(params[name])
            values[f"{name}_label"] = labels.get(key, "")
    return values


def render_prompt(preset: str, template: str, params: dict[str, Any] | None) -> str:
    """The prompt text of `template` for these parameters (validated, defaults filled in)."""
    values = _template_values(preset, validate_params(preset, params))
    try:
        text = _TemplateFormatter().format(template, **values)
    except (ValueError, TypeError) as exc:
        raise Invalid(f"The {preset} template cannot be rendered: {exc}.") from exc
    return " ".join(text.split())
