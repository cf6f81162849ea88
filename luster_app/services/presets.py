"""Presets as versioned prompts: the active template of each preset renders a job's prompt text.

Jobs store the prompt version id and the exact text they used, so adding or activating a
version never changes an old job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.engines import engines_for
from luster_app.models import PromptVersion
from luster_app.presets import PRESETS, get_preset, params_schema, render_prompt, validate_params
from luster_app.services.errors import Conflict, NotFound

__all__ = [
    "activate_prompt_version",
    "active_prompt",
    "add_prompt_version",
    "list_presets",
    "validate_params",
]


def active_prompt(*, session: Session, preset: str, params: dict[str, Any] | None) -> tuple[int, str]:
    """(prompt version id, prompt text) of the preset's active template for these parameters."""
    get_preset(preset)
    # Two columns of the table, not the ORM row: every job create reads this, and the ORM costs more.
    versions = PromptVersion.__table__.c
    query = select(versions.id, versions.template).where(versions.preset == preset, versions.is_active.is_(True))
    version = session.execute(query.order_by(versions.version.desc()).limit(1)).first()
    if version is None:
        raise Conflict(f"The {preset} preset has no active prompt version; an admin must activate one.")
    return version.id, render_prompt(preset, version.template, params)


def list_presets(*, session: Session, engine: str | None = None) -> list[dict[str, Any]]:
    """Every preset with its parameter schema, the engines that can run it and its active prompt
    version; with `engine`, whether that engine (the configured one) can run it."""
    active = {
        row.preset: row.version
        for row in session.execute(select(PromptVersion).where(PromptVersion.is_active.is_(True))).scalars()
    }
    presets = []
    for preset in PRESETS.values():
        engines = engines_for(preset.name)
        entry: dict[str, Any] = {
            "name": preset.name,
            "title": preset.title,
            "description": preset.description,
            "params_schema": params_schema(preset.name),
            "engines": engines,
            "prompt_version": active.get(preset.name),
        }
        if engine is not None:
            entry["available"] = engine in engines
        presets.append(entry)
    return presets


def add_prompt_version(*, session: Session, preset: str, template: str, activate: bool = False) -> PromptVersion:
    """A new version of the preset's template (checked by rendering it), optionally made active."""
    render_prompt(preset, template, None)  # Invalid (422) if it names unknown fields
    latest = session.execute(select(func.max(PromptVersion.version)).where(PromptVersion.preset == preset)).scalar()
    row = PromptVersion(
        preset=preset, version=(latest or 0) + 1, template=template, params_schema=params_schema(preset), is_active=False
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"Another {preset} prompt version was added at the same time; try again.") from exc
    if activate:
        _make_active(session, preset, row.version)
    session.commit()
    session.refresh(row)
    return row


def activate_prompt_version(*, session: Session, preset: str, version: int) -> PromptVersion:
    """Make `version` the preset's only active template; jobs already created keep their text."""
    get_preset(preset)
    row = session.execute(
        select(PromptVersion).where(PromptVersion.preset == preset, PromptVersion.version == version)
    ).scalars().first()
    if row is None:
        raise NotFound(f"The {preset} preset has no prompt version {version}.")
    _make_active(session, preset, version)
    session.commit()
    session.refresh(row)
    return row


def _make_active(session: Session, preset: str, version: int) -> None:
    # One statement flips every version of the preset, so two activations can never leave two active.
    session.execute(
        update(PromptVersion)
        .where(PromptVersion.preset == preset)
        .values(is_active=PromptVersion.version == version)
        .execution_options(synchronize_session="fetch")
    )
