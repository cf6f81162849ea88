"""Presets: typed parameters, versioned prompt templates in the database, GET /api/presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine, new_session
from luster_app.migrations import downgrade, upgrade
from luster_app.models import PromptVersion
from luster_app.presets import PRESETS, params_schema, render_prompt, validate_params
from luster_app.services.errors import Conflict, Invalid, NotFound
from luster_app.services.presets import activate_prompt_version, active_prompt, add_prompt_version, list_presets

SEEDED = {"enhance", "dusk", "sky", "lawn", "declutter"}


@pytest.fixture
def session(db_url: str):  # noqa: ANN201
    engine = make_engine(db_url)
    with new_session(engine) as db_session:
        yield db_session
    engine.dispose()


# The corrections are parameters of every preset, off unless the preset says otherwise.
CORRECTIONS_OFF = {"correct_lens": False, "straighten_verticals": False, "auto_privacy": False}


def test_defaults_fill_in_missing_parameters() -> None:
    assert validate_params("sky", None) == {"style": "clear_blue", **CORRECTIONS_OFF}
    assert validate_params("dusk", {"intensity": 0.5}) == {"intensity": 0.5, "window_glow": 0.7, **CORRECTIONS_OFF}
    assert validate_params("enhance", {}) == {**CORRECTIONS_OFF, "strength": 0.7, "straighten_verticals": True}


@pytest.mark.parametrize(
    ("preset", "params", "says"),
    [
        ("sky", {"style": "purple"}, "style"),
        ("dusk", {"intensity": 3}, "intensity"),
        ("lawn", {"strength": "lots"}, "strength"),
        ("enhance", {"brightness": 1}, "brightness"),
        ("sky", ["clear_blue"], "JSON object"),
        ("vintage", {}, "Unknown preset"),
    ],
)
def test_bad_parameters_are_a_422_that_says_what_is_wrong(preset: str, params: object, says: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate_params(preset, params)  # type: ignore[arg-type]
    assert caught.value.status_code == 422
    assert says in str(caught.value)


def test_schema_lists_each_parameter_with_default_range_and_choices() -> None:
    sky = params_schema("sky")["properties"]["style"]
    assert sky["enum"] == ["clear_blue", "soft_clouds", "sunset"] and sky["default"] == "clear_blue"
    assert set(sky["labels"]) == set(sky["enum"])
    strength = params_schema("lawn")["properties"]["strength"]
    assert (strength["minimum"], strength["maximum"], strength["type"]) == (0.0, 1.0, "number")
    assert params_schema("enhance")["additionalProperties"] is False


def test_migration_seeds_one_active_version_per_preset(session) -> None:  # noqa: ANN001
    rows = session.execute(select(PromptVersion)).scalars().all()
    assert {row.preset for row in rows} == SEEDED == set(PRESETS)
    assert all(row.version == 1 and row.is_active and row.params_schema["properties"] for row in rows)


def test_active_prompt_renders_the_stored_template(session) -> None:  # noqa: ANN001
    version_id, text = active_prompt(session=session, preset="sky", params={"style": "sunset"})
    row = session.get(PromptVersion, version_id)
    assert row is not None and row.preset == "sky" and row.is_active
    assert "warm sunset sky" in text and "{" not in text
    _, dusk = active_prompt(session=session, preset="dusk", params={"intensity": 0.5})
    assert "50%" in dusk


def test_every_seeded_template_renders_for_every_choice(session) -> None:  # noqa: ANN001
    for preset in PRESETS:
        properties = params_schema(preset)["properties"]
        variants = [{}] + [
            {name: choice}
            for name, prop in properties.items()
            for choice in prop.get("enum", [True, False] if prop["type"] == "boolean" else [])
        ]
        for params in variants:
            _, text = active_prompt(session=session, preset=preset, params=params)
            assert len(text) > 80 and "{" not in text


def test_a_new_version_changes_new_prompts_and_leaves_old_ones_reproducible(session) -> None:  # noqa: ANN001
    old_id, old_text = active_prompt(session=session, preset="lawn", params={})
    new = add_prompt_version(session=session, preset="lawn", template="Lawn v2, strength {strength:.0%}.", activate=True)
    assert new.version == 2 and new.is_active
    new_id, new_text = active_prompt(session=session, preset="lawn", params={"strength": 0.5})
    assert (new_id, new_text) == (new.id, "Lawn v2, strength 50%.")
    old = session.get(PromptVersion, old_id)
    session.refresh(old)
    assert not old.is_active
    # The version an old job points at still renders the exact text that job used.
    assert render_prompt("lawn", old.template, {}) == old_text


def test_adding_without_activating_keeps_the_current_version(session) -> None:  # noqa: ANN001
    before = active_prompt(session=session, preset="sky", params={})
    draft = add_prompt_version(session=session, preset="sky", template="Draft sky: {style_label}.")
    assert draft.version == 2 and not draft.is_active
    assert active_prompt(session=session, preset="sky", params={}) == before
    activate_prompt_version(session=session, preset="sky", version=2)
    assert active_prompt(session=session, preset="sky", params={})[1].startswith("Draft sky: a clear, deep blue sky")
    activate_prompt_version(session=session, preset="sky", version=1)
    assert active_prompt(session=session, preset="sky", params={}) == before
    query = select(PromptVersion).where(PromptVersion.preset == "sky", PromptVersion.is_active)
    active = session.execute(query).scalars().all()
    assert [row.version for row in active] == [1]


@pytest.mark.parametrize("template", ["Sky {colour}.", "Sky {style.__class__}.", "Sky {0}.", "Sky {style"])
def test_templates_with_unknown_or_unsafe_fields_are_refused(session, template: str) -> None:  # noqa: ANN001
    with pytest.raises(Invalid):
        add_prompt_version(session=session, preset="sky", template=template)
    assert session.execute(select(PromptVersion).where(PromptVersion.preset == "sky")).scalars().all()[-1].version == 1


def test_activating_a_missing_version_is_a_404(session) -> None:  # noqa: ANN001
    with pytest.raises(NotFound):
        activate_prompt_version(session=session, preset="dusk", version=7)


def test_a_preset_without_an_active_version_says_so(session) -> None:  # noqa: ANN001
    session.execute(sa.update(PromptVersion).where(PromptVersion.preset == "enhance").values(is_active=False))
    session.commit()
    with pytest.raises(Conflict, match="no active prompt version"):
        active_prompt(session=session, preset="enhance", params={})


def test_list_presets_names_the_engines_that_can_run_each(session) -> None:  # noqa: ANN001
    presets = {p["name"]: p for p in list_presets(session=session, engine="classic")}
    assert set(presets) == set(PRESETS)
    assert presets["declutter"]["engines"] == ["openai"] and presets["declutter"]["available"] is False
    assert presets["sky"]["engines"] == ["openai", "classic"] and presets["sky"]["available"] is True
    assert presets["sky"]["prompt_version"] == 1


def test_get_presets_on_the_local_engine(client: TestClient) -> None:
    response = client.get("/api/presets")
    assert response.status_code == 200
    body = response.json()
    assert body["engine"] == "classic"
    by_name = {p["name"]: p for p in body["presets"]}
    assert [name for name, p in by_name.items() if not p["available"]] == ["declutter"]
    assert by_name["sky"]["params_schema"]["properties"]["style"]["enum"] == ["clear_blue", "soft_clouds", "sunset"]


def test_get_presets_on_openai_offers_all_of_them(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(_env_file=None, luster_env="test", luster_data_dir=tmp_path, openai_api_key="sk-test-local-only")
    context = AppContext(settings, db=make_engine(sqlite_url))
    with TestClient(create_api(context)) as client:
        body = client.get("/api/presets").json()
    context.db.dispose()
    assert body["engine"] == "openai" and all(p["available"] for p in body["presets"])


def test_downgrade_removes_the_seeded_prompts_and_upgrade_restores_them(db_url: str) -> None:
    downgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM prompt_versions")).scalar() == 0
        upgrade(db_url, "head")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM prompt_versions WHERE is_active")).scalar() == len(SEEDED)
    finally:
        engine.dispose()
