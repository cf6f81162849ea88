"""seed the starting prompt templates (version 1 of each preset, active)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:00:00

A data migration. The templates and parameter schemas are frozen here as they were written;
later versions are added with services.presets.add_prompt_version, never by editing this file.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import luster_app.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP = (
    "Keep the framing, the architecture, the materials and every object exactly as they are; "
    "do not add, remove or restyle anything."
)


def _number(title: str, default: float, minimum: float, description: str) -> dict:
    return {
        "default": default, "description": description, "maximum": 1.0, "minimum": minimum, "title": title, "type": "number",
    }


def _choice(title: str, default: str, description: str, labels: dict[str, str]) -> dict:
    return {
        "default": default, "description": description, "enum": list(labels), "labels": labels, "title": title,
        "type": "string",
    }


def _schema(title: str, properties: dict) -> dict:
    return {"additionalProperties": False, "properties": properties, "title": title, "type": "object"}


SEEDS = {
    "enhance": (
        "Edit this real-estate listing photo so it looks professionally shot. Correct the exposure and the "
        "white balance so colours look natural and true to life, recover detail in shadows and highlights, "
        "and add gentle clarity. {straighten_verticals_label} Strength of the correction: {strength:.0%}. " + KEEP,
        _schema("EnhanceParams", {
            "strength": _number("Strength", 0.7, 0.0, "How strongly to correct exposure, white balance and contrast."),
            "straighten_verticals": {
                "default": True, "description": "Make walls and door frames stand upright (AI engine only).",
                "labels": {
                    "false": "Keep the perspective as it is.",
                    "true": "Straighten converging vertical lines so walls and door frames stand upright.",
                },
                "title": "Straighten Verticals", "type": "boolean",
            },
        }),
    ),
    "dusk": (
        "Turn this daytime real-estate exterior photo into a blue-hour twilight photo. Replace the sky with a "
        "deep blue twilight sky with a faint warm glow at the horizon, and lower the ambient light to dusk "
        "({intensity:.0%} of the way to blue hour). Switch on the lights: windows and outdoor lamps glow warm "
        "({window_glow:.0%} glow). " + KEEP,
        _schema("DuskParams", {
            "intensity": _number("Intensity", 0.8, 0.2, "How far toward blue hour the light goes."),
            "window_glow": _number("Window Glow", 0.7, 0.0, "How warmly windows and lamps glow."),
        }),
    ),
    "sky": (
        "Replace the sky in this real-estate photo with {style_label}. Let the light on the scene match the "
        "new sky subtly. Keep the buildings, rooflines, trees, wires and everything below the skyline exactly "
        "as they are, with clean edges; do not add or remove any object.",
        _schema("SkyParams", {
            "style": _choice("Style", "clear_blue", "The new sky.", {
                "clear_blue": "a clear, deep blue sky that fades lighter toward the horizon",
                "soft_clouds": "a bright blue sky with a few soft white clouds",
                "sunset": "a warm sunset sky, orange and pink near the horizon and blue above",
            }),
        }),
    ),
    "lawn": (
        "Make the lawn in this real-estate photo look healthy: turn dry, brown or patchy grass into an even, "
        "natural green ({strength:.0%} strength). Change only the grass; keep paths, flower beds, trees, "
        "hedges, buildings and the framing exactly as they are.",
        _schema("LawnParams", {
            "strength": _number("Strength", 0.8, 0.0, "How far dry or patchy grass is turned green and even."),
        }),
    ),
    "declutter": (
        "Remove clutter from this real-estate photo: {level_label}. Fill each removed area so it matches its "
        "surroundings seamlessly. Do not change the building, furniture, fixtures, landscaping, lighting or "
        "framing, and do not add anything new.",
        _schema("DeclutterParams", {
            "level": _choice("Level", "light", "What counts as clutter.", {
                "light": "loose items such as bins, hoses, cables, toys and litter",
                "thorough": "loose items such as bins, hoses, cables, toys and litter, and temporary signs",
            }),
        }),
    ),
}

prompt_versions = sa.table(
    "prompt_versions",
    sa.column("id", sa.Integer),
    sa.column("preset", sa.String),
    sa.column("version", sa.Integer),
    sa.column("template", sa.String),
    sa.column("params_schema", sa.JSON),
    sa.column("is_active", sa.Boolean),
    sa.column("created_at", luster_app.models.UTCDateTime(timezone=True)),
)
jobs = sa.table("jobs", sa.column("prompt_version_id", sa.Integer))


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(prompt_versions, [
        {"preset": preset, "version": 1, "template": template, "params_schema": schema, "is_active": True, "created_at": now}
        for preset, (template, schema) in SEEDS.items()
    ])


def downgrade() -> None:
    seeded = sa.select(prompt_versions.c.id).where(prompt_versions.c.preset.in_(list(SEEDS)), prompt_versions.c.version == 1)
    # Jobs keep their exact prompt_text; only the link to the removed version goes.
    op.execute(jobs.update().where(jobs.c.prompt_version_id.in_(seeded)).values(prompt_version_id=None))
    op.execute(prompt_versions.delete().where(prompt_versions.c.id.in_(seeded)))
