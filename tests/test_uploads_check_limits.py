"""Checking uploads decodes them in the web process: many parallel completes of huge PNGs must
meet a bound (checks at once, megapixels decoded at once), waiting their turn without stalling
the process's other requests, and a 503 with Retry-After if it does not come: never exhaust the
process's memory."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from luster_app.api import create_api
from luster_app.context import AppContext
from luster_app.db import make_engine
from tests.conftest import make_user
from tests.jobs_support import wait_for
from tests.fixtures_storage import Backend, new_shoot

SIDE = 4000  # a 16-megapixel PNG: 48 MB decoded, a few KB on the wire
PARALLEL = 8
SLOTS = 2
MORE_THAN_THE_THREAD_POOL = 45  # the request threads an app has (anyio's default limiter: 40)
MB = 1024 * 1024


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (30, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def _app(settings, sqlite_url: str, **limits: object) -> Iterator[Backend]:
    context = AppContext(settings.model_copy(update=limits), db=make_engine(sqlite_url))
    try:
        with TestClient(create_api(context)) as client:
            yield Backend(name="local", context=context, client=client)
    finally:
        context.db.dispose()


@pytest.fixture
def busy_app(settings, sqlite_url) -> Iterator[Backend]:
    yield from _app(settings, sqlite_url, upload_check_megapixels=20, upload_check_wait_seconds=0.2,
                    upload_check_queue_seconds=0.2)


@pytest.fixture
def patient_app(settings, sqlite_url) -> Iterator[Backend]:
    """Few check slots, a request thread that waits briefly for one, and a long turn to wait for."""
    yield from _app(settings, sqlite_url, upload_check_megapixels=20, upload_check_slots=SLOTS, upload_check_wait_seconds=0.2,
                    upload_check_queue_seconds=600)


def _start(app: Backend, headers: dict[str, str], shoot_id: str, data: bytes, name: str) -> str:
    """Presign and send, without completing: the asset id."""
    body = {"shoot_id": shoot_id, "filename": name, "content_type": "image/png", "size": len(data)}
    presign = app.client.post("/api/uploads/presign", json=body, headers=headers).json()
    assert app.send(presign["upload"], data).status_code == 204
    return presign["asset_id"]


def test_a_complete_that_finds_no_budget_free_is_told_to_come_back(busy_app: Backend) -> None:
    _, headers = make_user(busy_app.context)
    shoot_id = new_shoot(busy_app, headers)
    asset_id = _start(busy_app, headers, shoot_id, _png(3000), "big.png")
    budget = busy_app.context.upload_checks.budget

    with budget.hold(budget.total):  # other photos are being checked
        busy = busy_app.client.post(f"/api/uploads/{asset_id}/complete", headers=headers)

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "5"
    assert "in a moment" in busy.json()["detail"]
    [photo] = busy_app.client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert photo["status"] == "pending"  # not rejected: nothing is wrong with the file
    again = busy_app.client.post(f"/api/uploads/{asset_id}/complete", headers=headers)
    assert (again.status_code, again.json()["width"]) == (200, 3000)


def _peak_rss_since_reset() -> Iterator[int]:
    """Reset the process's peak resident memory, then (on the next step) the bytes it grew by."""
    status = Path("/proc/self/status")

    def field(name: str) -> int:
        line = next(line for line in status.read_text().splitlines() if line.startswith(name))
        return int(line.split()[1]) * 1024

    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    start = field("VmRSS:")
    yield 0
    yield field("VmHWM:") - start


def _completes(app: Backend, headers: dict[str, str], assets: list[str]) -> tuple[list[threading.Thread], list[int]]:
    """A thread per photo that completes it (not started yet), and the list their answers go to."""
    answers: list[int] = []
    lock = threading.Lock()

    def complete(asset_id: str) -> None:
        status = app.client.post(f"/api/uploads/{asset_id}/complete", headers=headers).status_code
        with lock:
            answers.append(status)

    return [threading.Thread(target=complete, args=(asset_id,)) for asset_id in assets], answers


def test_parallel_completes_of_huge_pngs_hold_at_most_the_budget(patient_app: Backend) -> None:
    _, headers = make_user(patient_app.context)
    shoot_id = new_shoot(patient_app, headers)
    data = _png(SIDE)
    assets = [_start(patient_app, headers, shoot_id, data, f"floor-{n}.png") for n in range(PARALLEL)]
    threads, answers = _completes(patient_app, headers, assets)
    memory = _peak_rss_since_reset()
    next(memory)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grew = next(memory)

    assert answers == [200] * PARALLEL  # each waited its turn, none was told to come back
    budget = patient_app.context.upload_checks.budget
    assert budget.peak <= budget.total == 20  # one 16-megapixel decode at a time
    # Eight at once would hold about 8 × 48 MB decoded; one at a time stays near one photo's worth.
    print(f"{PARALLEL} parallel completes of {SIDE}x{SIDE} PNGs: peak memory grew {grew / MB:.0f} MB")
    assert grew < 4 * SIDE * SIDE * 3, f"grew {grew / MB:.0f} MB"


def test_photos_waiting_their_turn_leave_the_other_requests_served(patient_app: Backend) -> None:
    _, headers = make_user(patient_app.context)
    shoot_id = new_shoot(patient_app, headers)
    data = _png(1000)
    assets = [_start(patient_app, headers, shoot_id, data, f"room-{n}.png") for n in range(MORE_THAN_THE_THREAD_POOL)]
    limits = patient_app.context.upload_checks
    threads, answers = _completes(patient_app, headers, assets)
    with limits.budget.hold(limits.budget.total):  # other photos are being decoded: none of these can start
        for thread in threads:
            thread.start()
        wait_for(lambda: limits.turns.statistics().tasks_waiting == MORE_THAN_THE_THREAD_POOL - SLOTS, "every photo queued")
        shoots = patient_app.client.get("/api/shoots", headers=headers)  # the photographer opens another page
        assert shoots.status_code == 200
        assert answers == []  # answered while every photo was still waiting
    for thread in threads:
        thread.join()

    assert answers == [200] * MORE_THAN_THE_THREAD_POOL
