"""Auto privacy: real faces and licence plates are blurred beyond recognition, nothing else in the
photo changes, and a shoot's setting reaches its jobs (and the AI only ever sees the blurred photo)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from luster_app.engines.classic import ClassicEngine
from luster_app.imaging import load_normalised
from luster_app.imaging.privacy import blur_faces_and_plates, find_faces, find_plates
from luster_app.pages.job import _job
from luster_app.services.corrections import set_auto_privacy
from luster_app.services.errors import NotFound
from tests.conftest import PHOTOS
from tests.corrections_support import BUILDINGS, make_app, run_job  # noqa: F401  (make_app: a fixture)
from tests.fakes.openai_server import FakeOpenAI
from tests.jobs_support import add_photo, add_shoot, outputs_of, user_with_credits

ASTRONAUT = Path(__file__).parent / "data" / "faces" / "astronaut.png"
FACE = (175, 70, 280, 175)  # Eileen Collins' face in the portrait, measured by hand
CARS = Path(__file__).parent / "data" / "plates" / "two_cars.jpg"
BRACKETS = Path(__file__).parent / "data" / "brackets"
PLATES = ((85, 485, 178, 517), (578, 494, 705, 534))  # "NO 23456" and "MLB 803", measured by hand
# Detail (variance of the Laplacian) a recognisable face or plate has far more of: the portrait's
# face has about 800, the plates about 4500 and 1600; a blurred one must fall below this.
BLURRED_DETAIL = 20.0


def detail(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    return float(cv2.Laplacian(np.asarray(image.convert("L").crop(box)), cv2.CV_64F).var())


def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def cars() -> Image.Image:
    return Image.open(CARS).convert("RGB")


def outside_regions(image: Image.Image, regions) -> np.ndarray:
    """A mask of the photo's pixels outside every blurred region."""
    outside = np.ones((image.height, image.width), bool)
    for region in regions:
        outside[int(region.top):int(region.bottom), int(region.left):int(region.right)] = False
    return outside


def test_a_real_face_is_blurred_beyond_recognition_and_nothing_else_changes() -> None:
    original = astronaut()
    assert detail(original, FACE) > 10 * BLURRED_DETAIL

    result = blur_faces_and_plates(original)

    assert result.note == "1 face blurred" and (len(result.faces), result.plates) == (1, ())
    assert detail(result.image, FACE) < BLURRED_DETAIL
    outside = outside_regions(original, result.regions)
    assert np.array_equal(np.asarray(original)[outside], np.asarray(result.image)[outside])
    assert outside.mean() > 0.85  # the blur is the face, not the photo


def test_real_licence_plates_are_blurred_beyond_recognition_and_nothing_else_changes() -> None:
    original = cars()
    assert all(detail(original, plate) > 10 * BLURRED_DETAIL for plate in PLATES)

    result = blur_faces_and_plates(original)

    assert result.note == "2 licence plates blurred" and (result.faces, len(result.plates)) == ((), 2)
    assert all(detail(result.image, plate) < BLURRED_DETAIL for plate in PLATES)
    for left, top, right, bottom in PLATES:  # each plate lies whole inside a blurred region
        assert any(r.left <= left and r.top <= top and r.right >= right and r.bottom >= bottom for r in result.plates)
    outside = outside_regions(original, result.regions)
    assert np.array_equal(np.asarray(original)[outside], np.asarray(result.image)[outside])
    assert outside.mean() > 0.95  # the blur is the plates, not the cars


def test_small_plates_in_a_large_street_photo_are_found() -> None:
    # The two cars at 3/4 size in a 4000 px street photo: plates about 70 and 95 px wide, which a
    # 2048 px analysis copy alone would shrink below what the model finds.
    street = Image.open(BUILDINGS).convert("RGB").resize((4000, 3000))
    corner, scale = (1000, 1800), 0.75
    street.paste(cars().resize((900, 588)), corner)

    found = find_plates(street)

    assert len(found) == len(PLATES)
    for left, top, right, bottom in PLATES:
        centre = (corner[0] + scale * (left + right) / 2, corner[1] + scale * (top + bottom) / 2)
        assert any(box.left < centre[0] < box.right and box.top < centre[1] < box.bottom for box in found)


def test_small_faces_in_a_large_room_photo_are_found() -> None:
    face = astronaut().crop((150, 40, 300, 200))
    room = Image.open(BUILDINGS).convert("RGB").resize((2560, 1920))
    placed = {(2000, 1000): 220, (1200, 700): 110, (300, 900): 60}
    for corner, size in placed.items():
        room.paste(face.resize((size, round(size * 160 / 150))), corner)

    found = find_faces(room)

    assert len(found) == len(placed)
    for (left, top), size in placed.items():
        assert any(abs(box.left - left) < size and abs(box.top - top) < size for box in found)


# Street facades, a lawn, phone photos, and a chapel whose white stair nosings are the nearest
# thing to a plate the model saw in the test photos (scored 0.42).
@pytest.mark.parametrize("path", [PHOTOS / "gps" / "DSCN0029.jpg", PHOTOS / "gps" / "DSCN0010.jpg",
                                  PHOTOS / "hdr" / "iphone_hdr_NO.jpg", PHOTOS / "heic" / "IMG_5195.HEIC",
                                  BRACKETS / "memorial0062.png"], ids=lambda path: path.name)
def test_a_photo_without_faces_or_plates_is_left_as_it_is(path) -> None:
    photo = load_normalised(path.read_bytes(), max_pixels=100_000_000)

    result = blur_faces_and_plates(photo)

    assert (result.image, result.regions, result.note) == (photo, (), "no faces or licence plates found to blur")


def test_a_shoot_with_auto_privacy_blurs_faces_and_plates_before_the_ai_sees_them(make_app, tmp_path) -> None:
    scene = cars()
    scene.paste(astronaut().crop((150, 40, 300, 200)), (900, 40))  # a face in the sky above the cars
    with FakeOpenAI() as fake:
        context, client = make_app(None, openai_api_key="sk-test-local-only", openai_base_url=fake.url,
                                   luster_data_dir=tmp_path)
        user, headers = user_with_credits(context, 1)
        shoot = add_shoot(context, user)
        with context.session() as session:
            set_auto_privacy(session=session, user_id=user.id, shoot_id=shoot.id, on=True)
        photo = add_photo(context, user, scene, shoot=shoot)

        job = run_job(context, client, headers, photo.id, "sky", {})

        assert job["status"] == "succeeded", job["error_message"]
        [edit] = fake.requests
    assert job["params"]["auto_privacy"] is True
    assert job["corrections"] == {"notes": ["1 face and 2 licence plates blurred"], "changed": True,
                                  "regions_blurred": 3, "faces_blurred": 1, "plates_blurred": 2}
    sent = Image.open(io.BytesIO(edit.image)).convert("RGB")
    assert not find_faces(sent) and not find_plates(sent)  # the model never got a face or plate to recognise
    info, _, _ = _job(context, user.id, uuid.UUID(job["id"]))
    assert info.corrections == "1 face and 2 licence plates blurred."


@pytest.mark.parametrize(("shoot_on", "job_params", "blurred"), [(True, {"auto_privacy": False}, False),
                                                                   (False, {}, False), (False, {"auto_privacy": True}, True)])
def test_the_job_can_override_the_shoot(make_app, shoot_on, job_params, blurred) -> None:
    context, client = make_app(ClassicEngine())
    user, headers = user_with_credits(context, 1)
    shoot = add_shoot(context, user)
    with context.session() as session:
        set_auto_privacy(session=session, user_id=user.id, shoot_id=shoot.id, on=shoot_on)
    photo = add_photo(context, user, astronaut(), shoot=shoot)

    job = run_job(context, client, headers, photo.id, "enhance", {**job_params, "straighten_verticals": False})

    assert job["status"] == "succeeded" and job["params"]["auto_privacy"] is blurred
    [stored] = outputs_of(context, job["id"])
    output = Image.open(io.BytesIO(context.storage.get_bytes(stored.storage_key)))
    assert (detail(output, FACE) < BLURRED_DETAIL) is blurred


def test_only_the_owner_can_turn_a_shoots_auto_privacy_on(context) -> None:
    owner, _ = user_with_credits(context, 0)
    stranger, _ = user_with_credits(context, 0)
    shoot = add_shoot(context, owner)
    with context.session() as session, pytest.raises(NotFound):
        set_auto_privacy(session=session, user_id=stranger.id, shoot_id=shoot.id, on=True)
