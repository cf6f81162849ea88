"""The OpenAI engine through the real `openai` client against a local server speaking its API."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.engines import EngineError, EngineRequest, build_engine
from luster_app.engines.classic import ClassicEngine
from luster_app.engines.openai_engine import OpenAIEngine, retry_after_seconds
from luster_app.imaging import encode_jpeg, load_normalised, metadata_report
from luster_app.imaging.postprocess import fit_within
from luster_app.models import PromptVersion
from luster_app.presets import PRESETS, render_prompt
from luster_app.services.presets import active_prompt
from tests.conftest import PHOTOS
from tests.fakes.openai_server import WARM_SHIFT, FakeOpenAI

MAX_PIXELS = 100_000_000
PROMPT = "Replace the sky with a clear, deep blue sky."


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_settings(tmp_path: Path, base_url: str, **overrides: object) -> Settings:
    values = {"openai_api_key": "sk-test-local-only", "openai_base_url": base_url, **overrides}
    return Settings(_env_file=None, luster_env="test", luster_data_dir=tmp_path, **values)


def engine_for(tmp_path: Path, fake: FakeOpenAI, **overrides: object) -> OpenAIEngine:
    engine = build_engine(openai_settings(tmp_path, fake.url, **overrides))
    assert isinstance(engine, OpenAIEngine)
    return engine


def load(path: Path) -> Image.Image:
    return load_normalised(path.read_bytes(), max_pixels=MAX_PIXELS)


def request(image: Image.Image, preset: str = "sky", label: str = "IMG_0001.jpg") -> EngineRequest:
    return EngineRequest(image=image, preset=preset, params={}, prompt_text=PROMPT, label=label)


def sent_picture(fake: FakeOpenAI, original_size: tuple[int, int]) -> Image.Image:
    """The photo inside the canvas the server received, without the padding around it."""
    canvas = Image.open(io.BytesIO(fake.requests[-1].image)).convert("RGB")
    width, height = fit_within(original_size, canvas.size)
    left, top = (canvas.width - width) // 2, (canvas.height - height) // 2
    return canvas.crop((left, top, left + width, top + height))


def assert_upright(picture: Image.Image, name: str) -> None:
    """The picture matches the upright reference far better than any flipped or turned version."""
    upright = np.asarray(load(PHOTOS / "orientation" / "landscape_1.jpg"), dtype=np.float32)
    seen = np.asarray(picture.resize((600, 450)), dtype=np.float32)
    wrong_ways = [np.flip(upright, 0), np.flip(upright, 1), np.flip(upright, (0, 1))]
    error = np.abs(seen - upright).mean()
    assert error < 16 and all(error < 0.5 * np.abs(seen - other).mean() for other in wrong_ways), f"{name} not upright"


def crop_to_aspect(image: Image.Image, aspect: float) -> Image.Image:
    width, height = image.size
    if width / height > aspect:
        new_width = round(height * aspect)
        return image.crop(((width - new_width) // 2, 0, (width - new_width) // 2 + new_width, height))
    new_height = round(width / aspect)
    return image.crop((0, (height - new_height) // 2, width, (height - new_height) // 2 + new_height))


def test_openai_engine_is_chosen_when_a_key_is_set_and_classic_otherwise(
    tmp_path: Path, settings: Settings, fake: FakeOpenAI
) -> None:
    assert isinstance(AppContext(settings).image_engine, ClassicEngine)
    engine = AppContext(openai_settings(tmp_path, fake.url)).image_engine
    assert isinstance(engine, OpenAIEngine) and engine.presets == set(PRESETS)
    assert engine.client.max_retries == 0  # the job decides about retries, never the client
    assert engine.client.timeout == 120.0


def test_engine_timeout_stays_below_the_job_lease(tmp_path: Path, fake: FakeOpenAI) -> None:
    engine = engine_for(tmp_path, fake, openai_timeout_seconds=600, job_lease_seconds=300)
    assert engine.client.timeout < 300


def test_sent_photo_has_no_location_and_is_upright(tmp_path: Path, fake: FakeOpenAI) -> None:
    engine = engine_for(tmp_path, fake)
    for path in sorted((PHOTOS / "orientation").glob("*.jpg")) + sorted((PHOTOS / "gps").glob("*.jpg")):
        image = load(path)
        engine.edit(request(image, label=path.name))
        report = metadata_report(fake.requests[-1].image)
        assert not (report.exif_gps or report.xmp or report.iptc), path.name
        assert report.exif_orientation in (None, 1)
        if path.parent.name == "orientation":
            assert_upright(sent_picture(fake, image.size), path.name)


def test_photo_straight_from_the_camera_is_still_sent_upright_and_clean(tmp_path: Path, fake: FakeOpenAI) -> None:
    raw = Image.open(PHOTOS / "orientation" / "landscape_6.jpg")  # EXIF orientation 6, not normalised
    engine_for(tmp_path, fake).edit(request(raw))
    report = metadata_report(fake.requests[-1].image)
    assert report.exif_orientation in (None, 1) and not report.exif_gps
    assert_upright(sent_picture(fake, (600, 450)), "landscape_6.jpg")


def test_iphone_heic_in_display_p3_is_sent_without_gps_or_xmp(tmp_path: Path, fake: FakeOpenAI) -> None:
    image = load(PHOTOS / "heic" / "IMG_5195.HEIC")
    output = engine_for(tmp_path, fake).edit(request(image, label="IMG_5195.HEIC"))
    report = metadata_report(fake.requests[-1].image)
    assert not (report.exif_gps or report.xmp or report.iptc)
    assert output.size == image.size == (2566, 3313)


ASPECTS = {"3:2": 3 / 2, "4:3": 4 / 3, "2:3": 2 / 3, "16:9": 16 / 9}


@pytest.mark.parametrize("aspect_name", ASPECTS)
@pytest.mark.parametrize("model", ["gpt-image-2.5-sunburst", "gpt-image-2", "gpt-image-1.5"])
def test_size_asked_fits_the_photo_and_output_keeps_its_resolution(
    tmp_path: Path, fake: FakeOpenAI, model: str, aspect_name: str
) -> None:
    aspect = ASPECTS[aspect_name]
    image = crop_to_aspect(load(PHOTOS / "hdr" / "iphone_hdr_NO.jpg").reduce(2), aspect)
    output = engine_for(tmp_path, fake, openai_image_model=model).edit(request(image))

    asked = fake.requests[-1].size
    assert asked is not None
    assert (asked[0] > asked[1]) == (aspect > 1)  # never a square, never the wrong orientation
    if model != "gpt-image-1.5":  # custom sizes: the canvas has the photo's own shape
        assert abs(asked[0] / asked[1] / aspect - 1) < 0.01
        assert asked[0] * asked[1] >= 0.97 * image.width * image.height  # as large as the photo
    assert Image.open(io.BytesIO(fake.requests[-1].image)).size == asked

    assert output.size == image.size
    before, after = np.asarray(image, dtype=np.float32), np.asarray(output, dtype=np.float32)
    # The server's edit (warmer) reaches the full-resolution output, on the same framing.
    shift = (after - before).reshape(-1, 3).mean(axis=0)
    assert np.allclose(shift, WARM_SHIFT, atol=6)
    correlation = np.corrcoef(before.mean(axis=-1).ravel()[::7], after.mean(axis=-1).ravel()[::7])[0, 1]
    assert correlation > 0.97


def test_edit_is_applied_to_the_full_resolution_original(tmp_path: Path, fake: FakeOpenAI) -> None:
    image = load(PHOTOS / "hdr" / "iphone_hdr_NO.jpg")  # 8 megapixels; the model sees under 4
    output = engine_for(tmp_path, fake).edit(request(image))
    asked = fake.requests[-1].size
    assert asked is not None and asked[0] * asked[1] < image.width * image.height
    # What a perfect engine would return: the server's edit (warmer) on every original pixel.
    ideal = np.clip(np.asarray(image, dtype=np.int16) + WARM_SHIFT, 0, 255).astype(np.float32)
    answer = np.clip(np.asarray(sent_picture(fake, image.size), dtype=np.int16) + WARM_SHIFT, 0, 255)
    upscaled = np.asarray(Image.fromarray(answer.astype(np.uint8)).resize(image.size, Image.Resampling.LANCZOS), np.float32)
    error = np.abs(np.asarray(output, dtype=np.float32) - ideal).mean()
    assert error < 0.5 * np.abs(upscaled - ideal).mean()  # sharper than upscaling the model's pixels
    assert error < 0.6


def test_prompt_sent_is_the_text_given(tmp_path: Path, fake: FakeOpenAI) -> None:
    engine_for(tmp_path, fake).edit(request(load(PHOTOS / "gps" / "DSCN0025.jpg")))
    sent = fake.requests[-1]
    assert sent.prompt == PROMPT
    assert sent.model == "gpt-image-2.5-sunburst" and sent.fields["quality"] == "high"
    assert "input_fidelity" not in sent.fields  # GPT Image 2 and later must omit it


def test_prompt_sent_is_the_active_stored_version(tmp_path: Path, fake: FakeOpenAI, context: AppContext) -> None:
    with context.session() as session:
        version_id, text = active_prompt(session=session, preset="sky", params={"style": "soft_clouds"})
        stored = session.get(PromptVersion, version_id)
        assert stored is not None and stored.is_active
    engine = engine_for(tmp_path, fake)
    engine.edit(EngineRequest(image=load(PHOTOS / "gps" / "DSCN0029.jpg"), preset="sky", prompt_text=text))
    assert fake.requests[-1].prompt == text == render_prompt("sky", stored.template, {"style": "soft_clouds"})
    assert "soft white clouds" in fake.requests[-1].prompt


def test_input_fidelity_is_sent_where_the_model_takes_it(tmp_path: Path, fake: FakeOpenAI) -> None:
    engine_for(tmp_path, fake, openai_image_model="gpt-image-1.5").edit(request(load(PHOTOS / "gps" / "DSCN0025.jpg")))
    assert fake.requests[-1].fields["input_fidelity"] == "high"


def test_a_quality_the_model_does_not_have_is_refused_at_startup(tmp_path: Path, fake: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="OPENAI_IMAGE_QUALITY"):
        engine_for(tmp_path, fake, openai_image_model="gpt-image-2", openai_image_quality="max")


def edit_error(engine: OpenAIEngine, label: str = "IMG_0001.jpg") -> EngineError:
    with pytest.raises(EngineError) as caught:
        engine.edit(request(load(PHOTOS / "gps" / "DSCN0029.jpg"), label=label))
    return caught.value


def test_rate_limit_is_transient_and_carries_retry_after(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.rate_limit_next(retry_after="7")
    error = edit_error(engine_for(tmp_path, fake))
    assert (error.code, error.transient, error.retry_after) == ("rate_limited", True, 7.0)
    assert len(fake.requests) == 1  # the client did not retry a paid call by itself


def test_server_error_is_transient(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.server_error_next()
    error = edit_error(engine_for(tmp_path, fake))
    assert (error.code, error.transient) == ("engine_unavailable", True)
    assert len(fake.requests) == 1


def test_moderation_block_is_permanent_and_names_the_photo(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.moderate_next()
    error = edit_error(engine_for(tmp_path, fake), label="kitchen-03.jpg")
    assert (error.code, error.transient) == ("moderation_blocked", False)
    assert "kitchen-03.jpg" in error.message and "Another preset may work" in error.message
    assert "Nothing was charged" in error.message


def test_unknown_model_is_permanent(tmp_path: Path, fake: FakeOpenAI) -> None:
    error = edit_error(engine_for(tmp_path, fake, openai_image_model="gpt-image-9-preview"))
    assert (error.code, error.transient) == ("model_not_found", False)
    assert "gpt-image-9-preview" in error.message and "OPENAI_IMAGE_MODEL" in error.message


def test_slow_answer_times_out_as_transient(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.answer_slowly_next(30)
    error = edit_error(engine_for(tmp_path, fake, openai_timeout_seconds=0.5))
    assert (error.code, error.transient) == ("engine_timeout", True)
    assert len(fake.requests) == 1


def test_unreachable_server_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = build_engine(openai_settings(tmp_path, f"http://127.0.0.1:{port}/v1"))
    assert isinstance(engine, OpenAIEngine)
    error = edit_error(engine)
    assert (error.code, error.transient) == ("engine_unreachable", True)


def test_retry_after_understands_seconds_milliseconds_and_dates() -> None:
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert 0 <= retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_on_every_photo_gives_a_private_full_size_jpeg(tmp_path: Path, fake: FakeOpenAI, preset: str) -> None:
    engine = engine_for(tmp_path, fake)
    for path in sorted((PHOTOS / "gps").glob("*.jpg")):
        original = load(path)
        output = engine.edit(EngineRequest(image=original, preset=preset, params={}, prompt_text=PROMPT, label=path.name))
        assert output.size == original.size
        jpeg = encode_jpeg(output)
        report = metadata_report(jpeg)
        assert not (report.exif_gps or report.xmp or report.iptc) and report.exif_orientation in (None, 1)
        decoded = Image.open(io.BytesIO(jpeg))
        decoded.load()
        assert decoded.size == original.size
