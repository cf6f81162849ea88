"""The run step: real photos in, upright private outputs out, within bounded CPU and memory."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from PIL import Image

from luster_app.imaging import has_gps
from luster_app.models import Asset, Job
from luster_app.storage.local import LocalStorage
from tests.conftest import PHOTOS
from tests.engines_for_tests import InvertEngine
from worker.pipeline import ImageLimits, PixelBudget, render


@pytest.fixture
def storage(settings) -> LocalStorage:
    return LocalStorage.from_settings(settings)


def _stored_original(storage: LocalStorage, path, *, width=None, height=None) -> Asset:
    key = f"{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4()}/original.jpg"
    storage.put_bytes(key, path.read_bytes(), content_type="image/jpeg")
    return Asset(id=uuid.uuid4(), shoot_id=uuid.uuid4(), user_id=uuid.uuid4(), kind="original", storage_key=key,
                 filename=path.name, content_type="image/jpeg", width=width, height=height, status="ready")


def _job(preset: str = "enhance") -> Job:
    return Job(user_id=uuid.uuid4(), asset_id=uuid.uuid4(), preset=preset, params={}, engine="test", prompt_text="")


def _limits(cpu_slots: int = 2, megapixels: float = 100) -> ImageLimits:
    return ImageLimits(cpu=threading.BoundedSemaphore(cpu_slots), budget=PixelBudget(megapixels), max_pixels=100_000_000)


@pytest.mark.parametrize("name", ["orientation/landscape_6.jpg", "gps/DSCN0010.jpg", "heic/IMG_5195.HEIC"])
def test_outputs_are_upright_full_size_and_carry_no_location(storage, name) -> None:
    original = _stored_original(storage, PHOTOS / name)

    rendered = render(_job(), original, storage=storage, engine=InvertEngine(), limits=_limits())

    output = Image.open(io.BytesIO(rendered.jpeg))
    expected = {"orientation/landscape_6.jpg": (600, 450), "gps/DSCN0010.jpg": (640, 480), "heic/IMG_5195.HEIC": (2566, 3313)}[name]
    assert output.format == "JPEG"
    assert (output.width, output.height) == (rendered.width, rendered.height) == expected
    assert not has_gps(rendered.jpeg) and not has_gps(rendered.thumb)
    thumb = Image.open(io.BytesIO(rendered.thumb))
    assert max(thumb.size) == 512
    assert (thumb.width, thumb.height) == (rendered.thumb_width, rendered.thumb_height)
    # Same aspect ratio as the output: no crop, no stretch.
    assert abs(thumb.width / thumb.height - output.width / output.height) < 0.01


def test_a_photo_waits_for_pixel_budget_held_by_others() -> None:
    budget = PixelBudget(30)
    release_first = threading.Event()
    second_started = threading.Event()

    def first() -> None:
        with budget.hold(24):
            release_first.wait()

    def second() -> None:
        with budget.hold(24):
            second_started.set()

    holder = threading.Thread(target=first)
    holder.start()
    waiter = threading.Thread(target=second)
    waiter.start()
    assert not second_started.wait(0.3)  # 24 + 24 > 30: it waits
    release_first.set()
    assert second_started.wait(10)
    holder.join()
    waiter.join()


def test_a_photo_larger_than_the_budget_still_runs_alone() -> None:
    budget = PixelBudget(10)
    with budget.hold(48):
        pass
    with budget.hold(5), budget.hold(5):
        pass


class _SlotProbe(InvertEngine):
    """Reports whether a CPU slot was free while it worked (with one slot in all)."""

    def __init__(self, limits: ImageLimits, cpu_bound: bool) -> None:
        self.limits = limits
        self.cpu_bound = cpu_bound
        self.slot_was_free: bool | None = None

    def edit(self, request):
        self.slot_was_free = self.limits.cpu.acquire(blocking=False)
        if self.slot_was_free:
            self.limits.cpu.release()
        return super().edit(request)


@pytest.mark.parametrize("cpu_bound", [False, True])
def test_only_engines_that_compute_locally_take_a_cpu_slot(storage, cpu_bound) -> None:
    limits = _limits(cpu_slots=1)
    engine = _SlotProbe(limits, cpu_bound)

    render(_job(), _stored_original(storage, PHOTOS / "gps/DSCN0021.jpg"), storage=storage, engine=engine, limits=limits)

    assert engine.slot_was_free is (not cpu_bound)
