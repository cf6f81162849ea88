"""The honest-edits measure on redrawn maps whose answer is known: shares, areas, boxes, review."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from luster_app.config import Settings
from luster_app.engines import EngineRequest, build_engine
from luster_app.engines.alteration import DECLUTTER_MAX_OBJECT, measure
from luster_app.imaging import load_normalised
from tests.conftest import PHOTOS
from tests.fakes.openai_server import FakeOpenAI

GRID = (100, 200)  # rows, columns: 20,000 cells


def _map(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    """A grid with each (left, top, right, bottom) box of cells set."""
    mask = np.zeros(GRID, dtype=bool)
    for left, top, right, bottom in boxes:
        mask[top:bottom, left:right] = True
    return mask


def test_enhance_allows_no_redrawing_and_names_the_area() -> None:
    alteration = measure(preset="enhance", redrawn=_map((20, 10, 40, 30)), allowed=_map(), measured_by="fit")

    assert alteration.inside == 0 and alteration.outside == 400 / 20_000
    largest = alteration.largest_outside
    assert largest is not None and largest.box == (0.1, 0.1, 0.2, 0.3)
    assert alteration.needs_review(outside_share=0.01, area_share=0.003)
    assert alteration.summary() == "tone and colour adjusted; 2.0% of the photo redrawn"


def test_redrawing_inside_the_region_passes_and_an_area_straddling_it_counts_its_outside_part() -> None:
    sky = _map((0, 0, 200, 40))
    inside = measure(preset="sky", redrawn=_map((0, 0, 200, 40)), allowed=sky, measured_by="fit")
    straddling = measure(preset="sky", redrawn=_map((50, 30, 60, 50)), allowed=sky, measured_by="fit")

    assert inside.outside == 0 and inside.inside == 0.4
    assert not inside.needs_review(outside_share=0.01, area_share=0.003)
    assert inside.summary() == "sky replaced; 40.0% of the photo redrawn, all in the sky"
    assert straddling.inside == 100 / 20_000 and straddling.outside == 100 / 20_000
    assert straddling.largest_outside.box == (0.25, 0.4, 0.3, 0.5)


def test_pieces_of_one_object_make_one_area_and_separate_objects_stay_apart() -> None:
    window_frame = _map((10, 10, 30, 12), (10, 28, 30, 30), (10, 10, 12, 30), (28, 10, 30, 30))
    two_objects = _map((10, 10, 20, 20), (150, 70, 160, 80))

    assert len(measure(preset="enhance", redrawn=window_frame, allowed=_map(), measured_by="fit").areas) == 1
    assert len(measure(preset="enhance", redrawn=two_objects, allowed=_map(), measured_by="fit").areas) == 2


def test_declutter_allows_small_separate_objects_only() -> None:
    side = int((DECLUTTER_MAX_OBJECT * 20_000) ** 0.5)  # the largest square still clutter
    small, large = (10, 10, 10 + side, 10 + side), (100, 20, 180, 90)

    alteration = measure(preset="declutter", redrawn=_map(small, large), allowed=_map(), measured_by="fit")

    assert [area.allowed for area in sorted(alteration.areas, key=lambda a: a.share)] == [True, False]
    assert alteration.largest_outside.share == 80 * 70 / 20_000


def test_one_large_area_needs_review_even_when_the_total_is_under_the_limit() -> None:
    alteration = measure(preset="sky", redrawn=_map((100, 80, 110, 88)), allowed=_map(), measured_by="fit")

    assert alteration.outside == 80 / 20_000  # 0.4%: under 1% in total, over 0.3% in one area
    assert alteration.needs_review(outside_share=0.01, area_share=0.003)
    assert not alteration.needs_review(outside_share=0.01, area_share=0.005)


def test_a_full_resolution_photo_recoloured_by_the_model_shows_nothing_redrawn_and_a_painted_window_is_found(
    tmp_path: Path,
) -> None:
    """The 8-megapixel iPhone photo through the real client: the fit runs at half the answer's size."""
    photo = load_normalised((PHOTOS / "hdr" / "iphone_hdr_NO.jpg").read_bytes(), max_pixels=100_000_000)
    request = EngineRequest(image=photo, preset="enhance", prompt_text="Brighten and balance this photo.")
    with FakeOpenAI() as fake:
        engine = build_engine(Settings(_env_file=None, luster_env="test", luster_data_dir=tmp_path,
                                       openai_api_key="sk-test-local-only", openai_base_url=fake.url))
        _, toned = engine.edit_measured(request)
        fake.paint_next((0.2, 0.5, 0.35, 0.7))
        _, painted = engine.edit_measured(request)

    assert toned.inside + toned.outside < 0.001 and not toned.needs_review(outside_share=0.01, area_share=0.003)
    largest = painted.largest_outside
    assert largest is not None and painted.needs_review(outside_share=0.01, area_share=0.003)
    left, top, right, bottom = largest.box
    assert abs(left - 0.2) < 0.03 and abs(top - 0.5) < 0.03 and abs(right - 0.35) < 0.03 and abs(bottom - 0.7) < 0.03
