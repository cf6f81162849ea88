"""The local classic engine on real photos: each preset does something visible and right.

Regions are hand-labelled on the 640×480 photos in tests/data/photos/gps (the engine
never sees these boxes): `SKY` lies inside the visible sky, `BELOW` below the skyline,
`LAWN` on the grass, `NOT_LAWN` on foliage, the tree trunk and the dirt path.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from luster_app.engines import EngineError, EngineRequest
from luster_app.engines.classic import ClassicEngine
from luster_app.imaging import encode_jpeg, load_normalised, metadata_report
from luster_app.presets import PRESETS
from tests.conftest import PHOTOS

GPS = PHOTOS / "gps"
SKY = {"DSCN0025.jpg": (215, 10, 260, 170), "DSCN0029.jpg": (190, 8, 290, 30)}
BELOW = {"DSCN0025.jpg": [(0, 330, 640, 480), (330, 0, 640, 480)], "DSCN0029.jpg": [(0, 250, 640, 480)]}
LAWN = ("DSCN0021.jpg", (330, 275, 620, 335))
NOT_LAWN = ("DSCN0021.jpg", [(0, 0, 640, 170), (0, 400, 640, 480), (120, 300, 190, 420)])
# The photos where a preset finds nothing to work on (no sky, no lawn).
NOTHING_TO_DO = {("sky", "iphone_hdr_NO.jpg"), ("sky", "IMG_5195.HEIC"), ("lawn", "DSCN0025.jpg")}
CLASSIC_RUNS = [("enhance", {}), ("sky", {"style": "clear_blue"}), ("sky", {"style": "soft_clouds"}),
                ("sky", {"style": "sunset"}), ("dusk", {}), ("lawn", {})]


# Every kind of real upload: camera JPEGs with GPS, an 8-megapixel iPhone JPEG, an iPhone HEIC
# in Display P3, and a JPEG stored sideways (EXIF orientation 6).
ALL_PHOTOS = [*sorted(GPS.glob("*.jpg")), PHOTOS / "hdr" / "iphone_hdr_NO.jpg", PHOTOS / "heic" / "IMG_5195.HEIC",
              PHOTOS / "orientation" / "landscape_6.jpg"]


@functools.cache
def load(path: Path) -> Image.Image:
    return load_normalised(path.read_bytes(), max_pixels=100_000_000)


def photo(name: str) -> Image.Image:
    return load(GPS / name)


def edit(image: Image.Image, preset: str, **params: object) -> Image.Image:
    return ClassicEngine().edit(EngineRequest(image=image, preset=preset, params=dict(params)))


def pixels(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box), dtype=np.float32).reshape(-1, 3) / 255.0


def saturation(rgb: np.ndarray) -> np.ndarray:
    top = rgb.max(axis=1)
    return (top - rgb.min(axis=1)) / np.maximum(top, 1e-6)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def grey_world_error(image: Image.Image) -> float:
    means = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)
    return float(np.abs(means - means.mean()).max() / means.mean())


@pytest.mark.parametrize("name", sorted(SKY))
@pytest.mark.parametrize("style", ["clear_blue", "soft_clouds"])
def test_sky_turns_blue_and_saturated_while_below_the_skyline_stays(name: str, style: str) -> None:
    before = photo(name)
    after = edit(before, "sky", style=style)
    sky_before, sky_after = pixels(before, SKY[name]), pixels(after, SKY[name])
    blueness = lambda rgb: float((rgb[:, 2] - rgb[:, 0]).mean())  # noqa: E731
    assert blueness(sky_after) > blueness(sky_before) + 0.12
    assert saturation(sky_after).mean() > saturation(sky_before).mean() + 0.12
    for box in BELOW[name]:
        assert np.abs(pixels(after, box) - pixels(before, box)).mean() < 0.01


def test_sunset_sky_is_warm_and_saturated_where_it_meets_the_skyline() -> None:
    before = photo("DSCN0025.jpg")
    after = edit(before, "sky", style="sunset")
    near_skyline = (215, 120, 260, 170)
    rgb_after = pixels(after, near_skyline)
    assert float((rgb_after[:, 0] - rgb_after[:, 2]).mean()) > 0.2  # red over blue: orange
    assert saturation(rgb_after).mean() > saturation(pixels(before, near_skyline)).mean() + 0.2


def test_sky_preset_leaves_a_photo_without_sky_alone() -> None:
    before = photo("DSCN0010.jpg")  # a hillside: at most slivers of sky between roofs
    after = edit(before, "sky", style="clear_blue")
    changed = np.abs(np.asarray(after, dtype=np.int16) - np.asarray(before, dtype=np.int16)).max(axis=-1) > 8
    assert changed.mean() < 0.03


def test_lawn_turns_green_and_nothing_else_changes() -> None:
    name, box = LAWN
    before = photo(name)
    after = edit(before, "lawn")

    def green_fraction(rgb: np.ndarray) -> float:
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        return float(((g > r * 1.08) & (g > b * 1.15) & (saturation(rgb) > 0.2)).mean())

    assert green_fraction(pixels(before, box)) < 0.3
    assert green_fraction(pixels(after, box)) > 0.7
    for other in NOT_LAWN[1]:
        assert np.abs(pixels(after, other) - pixels(before, other)).mean() < 0.015


def test_dusk_darkens_turns_the_sky_deep_blue_and_warms_bright_windows() -> None:
    name = "DSCN0029.jpg"
    before = photo(name)
    after = edit(before, "dusk")
    all_before, all_after = np.asarray(before, np.float32) / 255, np.asarray(after, np.float32) / 255
    assert luma(all_after.reshape(-1, 3)).mean() < 0.75 * luma(all_before.reshape(-1, 3)).mean()

    sky = pixels(after, SKY[name])
    assert sky[:, 2].mean() > sky[:, 0].mean() + 0.15  # blue well over red
    assert luma(sky).mean() < 0.5 < luma(pixels(before, SKY[name])).mean()  # deep, not pale

    below = BELOW[name][0]
    rgb_before, rgb_after = pixels(before, below), pixels(after, below)
    brightest = luma(rgb_before) > np.quantile(luma(rgb_before), 0.97)
    warmth = lambda rgb: float((rgb[:, 0] / np.maximum(rgb[:, 2], 0.02)).mean())  # noqa: E731
    assert warmth(rgb_after[brightest]) > warmth(rgb_before[brightest]) * 1.2


@pytest.mark.parametrize("name", ["DSCN0021.jpg", "DSCN0025.jpg", "DSCN0029.jpg"])
def test_enhance_removes_a_colour_cast(name: str) -> None:
    cast = np.asarray(photo(name), dtype=np.float32) * np.array([1.0, 0.9, 0.7])
    cast_image = Image.fromarray(cast.clip(0, 255).astype(np.uint8))
    enhanced = edit(cast_image, "enhance")
    assert grey_world_error(enhanced) < 0.6 * grey_world_error(cast_image)


def test_enhance_brightens_an_underexposed_photo_and_adds_local_contrast() -> None:
    dark = Image.fromarray((np.asarray(photo("DSCN0025.jpg"), dtype=np.float32) * 0.45).astype(np.uint8))
    enhanced = edit(dark, "enhance")
    as_luma = lambda image: luma(np.asarray(image, np.float32).reshape(-1, 3) / 255)  # noqa: E731
    assert as_luma(enhanced).mean() > 1.4 * as_luma(dark).mean()
    detail = lambda image: float(np.abs(np.diff(np.asarray(image.convert("L"), np.float32), axis=1)).mean())  # noqa: E731
    assert detail(enhanced) > 1.5 * detail(dark)


def test_declutter_is_refused_clearly_and_not_as_a_retryable_error() -> None:
    with pytest.raises(EngineError) as caught:
        edit(photo("DSCN0029.jpg"), "declutter")
    assert caught.value.code == "preset_unsupported"
    assert caught.value.transient is False
    assert "AI engine" in caught.value.message and "Nothing was charged" in caught.value.message


def test_engine_says_which_presets_it_can_run() -> None:
    engine = ClassicEngine()
    assert engine.presets == set(PRESETS) - {"declutter"}
    assert engine.supports("lawn") and not engine.supports("declutter")


@pytest.mark.parametrize("path", ALL_PHOTOS, ids=[p.name for p in ALL_PHOTOS])
@pytest.mark.parametrize(("preset", "params"), CLASSIC_RUNS, ids=[f"{p}-{v.get('style', '')}" for p, v in CLASSIC_RUNS])
def test_every_preset_on_every_photo_gives_a_private_full_size_jpeg(path: Path, preset: str, params: dict) -> None:
    original = load(path)
    try:
        output = edit(original, preset, **params)
    except EngineError as exc:  # a photo without sky or lawn is refused, never returned unchanged
        assert exc.code == "nothing_to_do" and (preset, path.name) in NOTHING_TO_DO
        return
    assert (preset, path.name) not in NOTHING_TO_DO
    assert output.size == original.size and output.mode == "RGB"
    jpeg = encode_jpeg(output)
    report = metadata_report(jpeg)
    assert not (report.exif_gps or report.xmp or report.iptc)
    assert report.exif_orientation in (None, 1)
    decoded = Image.open(io.BytesIO(jpeg))
    decoded.load()
    assert decoded.size == original.size


def test_outputs_are_upright_whatever_the_exif_orientation() -> None:
    outputs = [
        np.asarray(edit(load_normalised(path.read_bytes(), max_pixels=10**8), "enhance"), dtype=np.float32)
        for path in sorted((PHOTOS / "orientation").glob("*.jpg"))
    ]
    assert len(outputs) == 8
    for output in outputs[1:]:
        assert output.shape == outputs[0].shape
        assert np.abs(output - outputs[0]).mean() < 12  # same picture, same way up
