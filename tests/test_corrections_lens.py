"""Lens correction: a known lens's barrel distortion is taken out; an unknown lens is left alone."""

from __future__ import annotations

import io
import uuid

import cv2
import lensfunpy
import numpy as np
from PIL import Image, ImageDraw

from luster_app.imaging.lens import CameraInfo, camera_info, correct_distortion
from luster_app.pages.job import _job
from tests.corrections_support import BUILDINGS, make_app, run_job, straight_building, with_exif  # noqa: F401
from tests.jobs_support import add_photo, outputs_of, user_with_credits

CANON = {"make": "Canon", "model": "Canon EOS 5D Mark II", "lens_make": "Canon",
         "lens_model": "Canon EF 16-35mm f/2.8L II USM", "focal_length": 16.0}
MAGENTA = (255, 0, 255)
LINE_Y = 40  # a straight line near the top edge, where barrel distortion bends it most


def ruled_building() -> Image.Image:
    """The building photo at a camera-like size with one straight magenta line across its top."""
    photo = straight_building().resize((1200, 900), Image.Resampling.LANCZOS)
    ImageDraw.Draw(photo).line([(0, LINE_Y), (1199, LINE_Y)], fill=MAGENTA, width=3)
    return photo


def barrel(image: Image.Image) -> Image.Image:
    """The photo as the Canon 16-35 mm at 16 mm would bend it (lensfun's model of that lens,
    run in reverse), no empty edges."""
    database = lensfunpy.Database()
    body = database.find_cameras(CANON["make"], CANON["model"])[0]
    lens = database.find_lenses(body, CANON["lens_make"], CANON["lens_model"])[0]
    modifier = lensfunpy.Modifier(lens, body.crop_factor, image.width, image.height)
    modifier.initialize(CANON["focal_length"], 8.0, flags=lensfunpy.ModifyFlags.DISTORTION, scale=1.0, reverse=True)
    pixels = cv2.remap(np.asarray(image), modifier.apply_geometry_distortion(), None, cv2.INTER_LANCZOS4,
                       borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(pixels)


def bow(image: Image.Image) -> float:
    """How far, in pixels, the magenta line strays from the best straight line through it."""
    rgb = np.asarray(image.convert("RGB")).astype(int)
    magenta = (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] > 180)
    magenta[image.height // 3:] = False
    columns = np.flatnonzero(magenta.any(axis=0))
    rows = np.array([np.flatnonzero(magenta[:, x]).mean() for x in columns])
    fit = np.polyval(np.polyfit(columns, rows, 1), columns)
    return float(np.abs(rows - fit).max())


def test_a_known_lens_has_its_barrel_distortion_taken_out() -> None:
    straight = ruled_building()
    bent = barrel(straight)
    assert bow(straight) < 1 and bow(bent) > 3  # the fault is there

    result = correct_distortion(bent, CameraInfo(**CANON))

    assert result.changed and result.note == "lens distortion corrected (Canon EF 16-35mm f/2.8L II USM at 16 mm)"
    assert result.image.size == bent.size
    assert bow(result.image) < 1.5
    difference = np.abs(np.asarray(result.image, np.float32) - np.asarray(straight, np.float32)).mean()
    assert difference < 0.2 * np.abs(np.asarray(bent, np.float32) - np.asarray(straight, np.float32)).mean()


def test_an_unknown_lens_is_left_as_it_is_and_says_so() -> None:
    original = BUILDINGS.read_bytes()  # a Nikon Coolpix P6000: lensfun has the body, not its lens
    photo = Image.open(io.BytesIO(original)).convert("RGB")

    result = correct_distortion(photo, camera_info(original))

    assert (result.changed, result.image) == (False, photo)
    assert result.note == "no lens profile for NIKON COOLPIX P6000 with its lens: distortion left as it is"


def test_a_photo_that_names_no_camera_is_left_as_it_is() -> None:
    photo = straight_building()
    result = correct_distortion(photo, camera_info(b"not even an image"))
    assert (result.changed, result.image) == (False, photo)
    assert result.note == "the photo does not say which camera and lens took it: distortion left as it is"


def test_a_job_corrects_the_lens_the_upload_names(make_app) -> None:
    context, client = make_app()
    user, headers = user_with_credits(context, 2)
    known = add_photo(context, user, with_exif(barrel(ruled_building()), **CANON))
    unknown = add_photo(context, user, BUILDINGS.read_bytes())

    job = run_job(context, client, headers, known.id, "lawn", {"correct_lens": True})
    left = run_job(context, client, headers, unknown.id, "lawn", {"correct_lens": True})

    assert job["status"] == left["status"] == "succeeded"
    assert job["corrections"]["notes"] == ["lens distortion corrected (Canon EF 16-35mm f/2.8L II USM at 16 mm)"]
    [stored] = outputs_of(context, job["id"])
    assert bow(Image.open(io.BytesIO(context.storage.get_bytes(stored.storage_key)))) < 1.5
    info, _, _ = _job(context, user.id, uuid.UUID(left["id"]))
    assert info.corrections == "No lens profile for NIKON COOLPIX P6000 with its lens: distortion left as it is."
