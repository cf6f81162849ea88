"""Straight verticals: a keystoned building comes back upright, a straight one is left alone."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from luster_app.imaging.verticals import MAX_CROP_SHARE, straighten, vertical_tilt
from tests.conftest import PHOTOS
from tests.corrections_support import keystone, long_lines_lean, straight_building


@pytest.mark.parametrize("pitch", [4.0, 8.0, -6.0])
def test_a_known_keystone_comes_back_with_upright_verticals(pitch) -> None:
    straight = straight_building()
    tilted = keystone(straight, pitch)
    assert abs(vertical_tilt(tilted) - abs(pitch)) < 1.0  # the fault is there, and read as such

    result = straighten(tilted)

    assert result.changed
    assert abs(result.degrees - abs(pitch)) < 1.0
    assert re.fullmatch(r"verticals straightened by \d+\.\d°", result.note)
    assert vertical_tilt(result.image) < 0.5
    # Measured independently: the longest verticals are back near upright.
    assert long_lines_lean(result.image) < max(1.0, long_lines_lean(tilted) / 2)
    # Cropped, not squashed or squared: the photo's aspect, and no more than the allowed crop.
    width, height = result.image.size
    assert abs(width / height - tilted.width / tilted.height) < 0.01
    assert width * height >= (1 - MAX_CROP_SHARE) * tilted.width * tilted.height * 0.9


def test_an_already_straight_photo_is_left_as_it_is() -> None:
    straight = straight_building()
    assert vertical_tilt(straight) < 0.2

    result = straighten(straight)

    assert not result.changed
    assert result.note == "no leaning verticals found"
    assert result.image is straight


@pytest.mark.parametrize("photo", [None, "gps/DSCN0021.jpg"])
def test_a_photo_without_verticals_says_so(photo) -> None:
    image = Image.new("RGB", (400, 300), (180, 190, 200)) if photo is None else Image.open(PHOTOS / photo).convert("RGB")

    result = straighten(image)

    assert (result.changed, result.image) == (False, image)
    assert result.note == "no leaning verticals found (too few vertical lines)"


def test_a_tilt_too_strong_to_be_a_mistake_is_left_and_explained() -> None:
    tilted = keystone(straight_building(), 25.0)

    result = straighten(tilted)

    assert not result.changed and result.image is tilted
    assert re.fullmatch(r"verticals left as they are: a \d+\.\d° tilt looks deliberate", result.note)


def test_a_correction_that_would_crop_too_much_is_refused(monkeypatch) -> None:
    tilted = keystone(straight_building(), 8.0)
    monkeypatch.setattr("luster_app.imaging.verticals.MAX_CROP_SHARE", 0.02)

    result = straighten(tilted)

    assert not result.changed and result.image is tilted
    assert re.fullmatch(r"verticals left as they are: straightening \d+\.\d° would crop \d+% of the photo", result.note)
