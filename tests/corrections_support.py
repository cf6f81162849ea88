"""Real photos with known geometric faults, for the correction tests."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from functools import cache

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.imaging.verticals import DEFAULT_FOCAL_SHARE, straighten
from tests.conftest import PHOTOS
from tests.jobs_support import worker_context
from worker.worker import Worker

BUILDINGS = PHOTOS / "gps" / "DSCN0029.jpg"  # a street of tall facades, door and window frames


@cache
def straight_building() -> Image.Image:
    """The street photo with its own slight tilt taken out: the reference "straight" photo."""
    return straighten(Image.open(BUILDINGS).convert("RGB")).image


def keystone(image: Image.Image, pitch_degrees: float) -> Image.Image:
    """The photo as a camera pitched `pitch_degrees` up (negative: down) would have taken it:
    the homography of that rotation, so verticals converge as they do in a real photo."""
    width, height = image.size
    focal = DEFAULT_FOCAL_SHARE * max(width, height)
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    rotation = cv2.Rodrigues(np.array([math.radians(pitch_degrees), 0.0, 0.0]))[0]
    warp = camera @ rotation @ np.linalg.inv(camera)
    pixels = cv2.warpPerspective(np.asarray(image), warp, image.size, flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(pixels)


def long_lines_lean(image: Image.Image, count: int = 10) -> float:
    """Length-weighted mean lean from upright, in degrees, of the photo's `count` longest
    near-vertical segments: measured here with OpenCV directly, not by the code under test."""
    grey = np.asarray(image.convert("L"))
    lines = cv2.createLineSegmentDetector().detect(grey)[0].reshape(-1, 4)
    dx, dy = lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1]
    lean, length = np.degrees(np.arctan2(np.abs(dx), np.abs(dy))), np.hypot(dx, dy)
    vertical = lean < 15
    lean, length = lean[vertical], length[vertical]
    longest = np.argsort(-length)[:count]
    return float(np.average(lean[longest], weights=length[longest]))


@pytest.fixture
def make_app(settings, db_url) -> Iterator:
    """Build the API and an in-process worker around an engine (None: the configured one)."""
    contexts: list[AppContext] = []
    clients: list[TestClient] = []

    def build(engine=None, **overrides) -> tuple[AppContext, TestClient]:
        context = worker_context(settings, db_url, engine, **overrides)
        contexts.append(context)
        clients.append(TestClient(create_api(context)))
        return context, clients[-1]

    yield build
    for client in clients:
        client.close()
    for context in contexts:
        context.db.dispose()


def run_job(context: AppContext, client: TestClient, headers, photo_id, preset: str, params: dict) -> dict:
    """Queue one job through the API, let the worker drain, and read the job back."""
    response = client.post("/api/jobs", json={"asset_id": str(photo_id), "preset": preset, "params": params}, headers=headers)
    assert response.status_code == 201, response.text
    assert Worker(context, concurrency=1, drain=True).run() == 0
    return client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json()


def with_exif(image: Image.Image, *, make: str, model: str, lens_make: str = "", lens_model: str = "",
              focal_length: float | None = None) -> bytes:
    """The photo as a camera JPEG whose EXIF names the camera, lens and focal length."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, model
    details = exif.get_ifd(0x8769)
    if lens_make:
        details[0xA433] = lens_make
    if lens_model:
        details[0xA434] = lens_model
    if focal_length:
        details[0x920A] = focal_length
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()
