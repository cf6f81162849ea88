"""Corrections through the real worker: recorded on the job, seen by the AI before its edit,
and a corrections-only job that changes nothing ends uncharged with the reason."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from PIL import Image

from luster_app.context import AppContext
from luster_app.engines.classic import ClassicEngine
from luster_app.imaging.verticals import vertical_tilt
from luster_app.pages.job import _job
from luster_app.services.corrections import corrections_note
from tests.corrections_support import keystone, make_app, run_job, straight_building  # noqa: F401  (make_app: a fixture)
from tests.fakes.openai_server import FakeOpenAI
from tests.jobs_support import add_photo, balance, job_charges, outputs_of, user_with_credits

STRAIGHTENED = r"Verticals straightened by \d+\.\d°\."


def _output(context: AppContext, job_id: str) -> Image.Image:
    [stored] = outputs_of(context, job_id)
    return Image.open(io.BytesIO(context.storage.get_bytes(stored.storage_key))).convert("RGB")


@pytest.mark.parametrize("preset", ["enhance", "dusk", "sky"])
def test_every_preset_on_the_classic_engine_straightens_and_says_so(make_app, preset) -> None:
    context, client = make_app(ClassicEngine())
    user, headers = user_with_credits(context, 2)
    photo = add_photo(context, user, keystone(straight_building(), 7.0))

    job = run_job(context, client, headers, photo.id, preset, {"straighten_verticals": True})

    assert job["status"] == "succeeded", job["error_message"]
    assert job["params"]["straighten_verticals"] is True
    assert re.fullmatch(STRAIGHTENED, corrections_note(job["corrections"]))
    output = _output(context, job["id"])
    assert vertical_tilt(output) < 0.5
    assert abs(output.width / output.height - 640 / 480) < 0.01
    # The job page says what was done.
    info, _, _ = _job(context, user.id, uuid.UUID(job["id"]))
    assert re.fullmatch(STRAIGHTENED, info.corrections)


def test_the_ai_engine_is_sent_the_straightened_photo(make_app, tmp_path) -> None:
    with FakeOpenAI() as fake:
        context, client = make_app(
            None, openai_api_key="sk-test-local-only", openai_base_url=fake.url, luster_data_dir=tmp_path
        )
        user, headers = user_with_credits(context, 1)
        photo = add_photo(context, user, keystone(straight_building(), -6.0))

        job = run_job(context, client, headers, photo.id, "enhance", {})

        assert (job["status"], job["engine"]) == ("succeeded", "openai"), job["error_message"]
        [edit] = fake.requests
        sent = Image.open(io.BytesIO(edit.image)).convert("RGB")
    assert job["params"]["straighten_verticals"] is True  # Enhance straightens unless told not to
    # The canvas the model got holds the straightened photo (padded to the model's size).
    assert vertical_tilt(sent) < 0.5


def test_a_job_that_asks_for_no_correction_is_left_uncorrected(make_app) -> None:
    context, client = make_app(ClassicEngine())
    user, headers = user_with_credits(context, 1)
    tilted = keystone(straight_building(), 7.0)
    photo = add_photo(context, user, tilted)

    job = run_job(context, client, headers, photo.id, "enhance", {"straighten_verticals": False})

    assert job["status"] == "succeeded" and job["corrections"] is None
    assert _output(context, job["id"]).size == tilted.size


def test_corrections_only_with_nothing_to_correct_ends_uncharged_with_the_reason(make_app) -> None:
    context, client = make_app(ClassicEngine())
    user, headers = user_with_credits(context, 1)
    photo = add_photo(context, user, straight_building())

    job = run_job(context, client, headers, photo.id, "enhance", {"strength": 0, "straighten_verticals": True})

    assert (job["status"], job["error_code"]) == ("failed", "nothing_to_change")
    assert job["error_message"] == (
        "No leaning verticals found: nothing was changed, so there is no new photo. No credit was charged."
    )
    assert (balance(context, user.id), job_charges(context, user.id), outputs_of(context, job["id"])) == (1, 0, [])


def test_corrections_only_that_changes_the_photo_is_charged(make_app) -> None:
    context, client = make_app(ClassicEngine())
    user, headers = user_with_credits(context, 1)
    photo = add_photo(context, user, keystone(straight_building(), 7.0))

    job = run_job(context, client, headers, photo.id, "enhance", {"strength": 0, "straighten_verticals": True})

    assert job["status"] == "succeeded", job["error_message"]
    assert (balance(context, user.id), job_charges(context, user.id)) == (0, 1)
    assert vertical_tilt(_output(context, job["id"])) < 0.5
