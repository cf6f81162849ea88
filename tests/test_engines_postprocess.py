"""Fitting photos to a model's canvas and bringing its edit back onto the full-size original."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from luster_app.engines.openai_models import MODELS, choose_size, model_spec
from luster_app.imaging import load_normalised
from luster_app.imaging.postprocess import crop_to_content, pad_to_canvas, transfer_edit
from tests.conftest import PHOTOS


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return load_normalised((PHOTOS / "hdr" / "iphone_hdr_NO.jpg").read_bytes(), max_pixels=100_000_000)


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def model_round_trip(photo: Image.Image, canvas: tuple[int, int], edit) -> tuple[Image.Image, Image.Image]:  # noqa: ANN001
    """(the photo as sent, the edit transferred back) for a stand-in model that applies `edit`."""
    padded, sent, box = pad_to_canvas(photo, canvas)
    answer = Image.fromarray(np.round(np.clip(edit(as_array(padded)), 0, 255)).astype(np.uint8))
    return sent, transfer_edit(photo, sent, crop_to_content(answer, box, canvas))


def test_padding_keeps_the_whole_photo_unstretched(photo: Image.Image) -> None:
    padded, sent, box = pad_to_canvas(photo, (1536, 1024))  # a 4:3 photo on a 3:2 canvas
    assert padded.size == (1536, 1024)
    assert sent.size == (box[2] - box[0], box[3] - box[1]) == (1365, 1024)
    assert as_array(padded.crop(box)).tolist() == as_array(sent).tolist()
    assert abs(sent.width / sent.height - photo.width / photo.height) < 0.002


def test_an_exposure_and_colour_change_reaches_every_original_pixel(photo: Image.Image) -> None:
    darker_and_cooler = lambda rgb: rgb * np.array([0.6, 0.7, 0.95])  # noqa: E731
    sent, output = model_round_trip(photo, (1536, 1024), darker_and_cooler)
    ideal = np.round(np.clip(darker_and_cooler(as_array(photo)), 0, 255))
    answer = Image.fromarray(np.round(darker_and_cooler(as_array(sent))).astype(np.uint8))
    upscaled = as_array(answer.resize(photo.size, Image.Resampling.LANCZOS))
    assert output.size == photo.size
    assert np.abs(as_array(output) - ideal).mean() < 0.25 * np.abs(upscaled - ideal).mean()


def test_an_object_the_model_removed_does_not_ghost_back(photo: Image.Image) -> None:
    canvas, region = (1536, 1024), (500, 300, 800, 500)

    def remove(rgb: np.ndarray) -> np.ndarray:
        rgb = rgb.copy()
        rgb[region[1] : region[3], region[0] : region[2]] = (90, 120, 60)
        return rgb

    _, output = model_round_trip(photo, canvas, remove)
    _, _, box = pad_to_canvas(photo, canvas)
    scale = photo.width / (box[2] - box[0])
    inner = [round((region[0] - box[0]) * scale) + 30, round(region[1] * scale) + 30,
             round((region[2] - box[0]) * scale) - 30, round(region[3] * scale) - 30]
    patch = as_array(output.crop(tuple(inner))).reshape(-1, 3)
    assert np.abs(patch.mean(axis=0) - (90, 120, 60)).max() < 1.5
    assert patch.std(axis=0).max() < 2  # flat, as the model drew it: no trace of the old detail


def test_new_texture_the_model_drew_is_kept(photo: Image.Image) -> None:
    canvas, rows = (1536, 1024), slice(40, 200)
    stripes = (np.arange(1536) // 6 % 2 * 120)[None, :, None]

    def clouds(rgb: np.ndarray) -> np.ndarray:
        rgb = rgb.copy()
        rgb[rows] = 60 + stripes
        return rgb

    _, output = model_round_trip(photo, canvas, clouds)
    band = as_array(output)[round(60 * photo.height / 1024) : round(180 * photo.height / 1024)]
    assert band.std() > 40  # the stripes are there at full size, not averaged away


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("size", [(6000, 4000), (4032, 3024), (3024, 4032), (3840, 2160), (640, 480), (8000, 1000)])
def test_every_model_gets_a_size_it_accepts(model: str, size: tuple[int, int]) -> None:
    spec = model_spec(model)
    width, height = choose_size(spec, size)
    if spec.fixed_sizes:
        assert (width, height) in spec.fixed_sizes
    else:
        assert width % 16 == 0 and height % 16 == 0
        assert max(width, height) <= 3840 and max(width / height, height / width) <= 3
        assert 655_360 <= width * height <= 2560 * 1440
        if max(size) / min(size) <= 3:
            assert abs((width / height) / (size[0] / size[1]) - 1) < 0.01
    assert (width >= height) == (size[0] >= size[1])
