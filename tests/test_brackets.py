"""Bracket groups: real exposure brackets merged into one photo by the worker, one credit per
group, bad groups refused with a reason and never charged, groups suggested from EXIF."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select, text, update

from luster_app.models import Asset, AssetKind, Bracket
from luster_app.services.deletion import delete_asset
from luster_app.services.errors import Conflict
from luster_app.services.jobs import lock_credits
from tests.conftest import make_user
from tests.corrections_support import make_app  # noqa: F401  (a fixture)
from tests.engines_for_tests import NoopEngine
from tests.fixtures_storage import Backend, new_shoot, upload
from tests.jobs_support import add_photos, add_shoot, balance, job_charges, outputs_of, user_with_credits
from luster_app.services.job_queue import claim_jobs
from worker.brackets import MERGE_WORKING_SET, merged_keys
from worker.worker import Worker

BRACKETS = Path(__file__).parent / "data" / "brackets"
# Brightest to darkest: 16 s, 2 s, 1/4 s, 1/32 s (README.md there).
FRAMES = [BRACKETS / f"memorial{n}.png" for n in ("0062", "0065", "0068", "0071")]
ASTRONAUT = Path(__file__).parent / "data" / "faces" / "astronaut.png"
# These frames' black sits at luma 16: a pixel there is crushed; one at 245 or over is clipped.
BLACK, CLIPPED = 16, 245


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"))


def clipped_share(image: Image.Image) -> float:
    return float((_luma(image) >= CLIPPED).mean())


def crushed_share(image: Image.Image) -> float:
    return float((_luma(image) <= BLACK).mean())


def _frames(paths: list[Path]) -> list[bytes]:
    return [path.read_bytes() for path in paths]


def _group(client, headers, shoot_id, asset_ids) -> dict:
    response = client.post(f"/api/shoots/{shoot_id}/brackets", json={"asset_ids": [str(a) for a in asset_ids]}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _enhance(context, client, headers, bracket_id, **params) -> dict:
    body = {"bracket_id": bracket_id, "preset": "enhance", "params": params}
    response = client.post("/api/jobs", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert Worker(context, concurrency=1, drain=True).run() == 0
    return client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json()


def _merged_photo(context, bracket_id: str) -> tuple[Asset, Image.Image]:
    with context.session() as session:
        merged = session.execute(
            select(Asset).where(Asset.bracket_id == uuid.UUID(bracket_id), Asset.kind == AssetKind.MERGED)
        ).scalar_one()
    return merged, Image.open(io.BytesIO(context.storage.get_bytes(merged.storage_key))).convert("RGB")


def test_a_real_bracket_merges_into_one_photo_with_fewer_clipped_and_crushed_pixels(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 1)
    frames = add_photos(context, user, _frames(FRAMES))
    bracket = _group(client, headers, frames[0].shoot_id, [f.id for f in frames])

    job = _enhance(context, client, headers, bracket["id"])

    assert job["status"] == "succeeded", job["error_message"]
    assert job["bracket_id"] == bracket["id"]
    brightest, darkest = Image.open(FRAMES[0]), Image.open(FRAMES[-1])
    merged, photo = _merged_photo(context, bracket["id"])
    assert merged.status == "ready" and photo.size == (512, 768) == (merged.width, merged.height)
    assert clipped_share(photo) < clipped_share(brightest) / 2
    assert crushed_share(photo) < crushed_share(darkest) / 2
    [output] = outputs_of(context, job["id"])
    assert output.parent_asset_id == merged.id
    result = Image.open(io.BytesIO(context.storage.get_bytes(output.storage_key))).convert("RGB")
    assert clipped_share(result) < clipped_share(brightest) and crushed_share(result) < crushed_share(darkest)
    # The shoot lists the group with its merged photo (for compare) and the enhanced version.
    listed = client.get(f"/api/shoots/{frames[0].shoot_id}/brackets", headers=headers).json()
    [group] = listed["groups"]
    assert group["asset_ids"] == [str(f.id) for f in frames]
    assert group["merged"]["original_url"] and [o["id"] for o in group["merged"]["outputs"]] == [str(output.id)]
    photos = client.get(f"/api/shoots/{frames[0].shoot_id}/assets", headers=headers).json()
    assert [p["bracket_id"] for p in photos] == [bracket["id"]] * 4


def test_a_merge_larger_than_the_workers_budget_is_made_smaller_not_past_it(make_app) -> None:
    """Four 0.39 MP frames need about 20 MP of budget to merge; a worker with 10 merges them at
    half the pixels (same shape) rather than run out of memory."""
    context, client = make_app(NoopEngine(), worker_image_budget_megapixels=10)
    user, headers = user_with_credits(context, 1)
    frames = add_photos(context, user, _frames(FRAMES))
    bracket = _group(client, headers, frames[0].shoot_id, [f.id for f in frames])

    job = _enhance(context, client, headers, bracket["id"])

    assert job["status"] == "succeeded", job["error_message"]
    _, photo = _merged_photo(context, bracket["id"])
    width, height = photo.size
    assert len(frames) * width * height * MERGE_WORKING_SET <= 10_000_000
    assert width < 512 and abs(width / height - 512 / 768) < 0.01
    assert crushed_share(photo) < crushed_share(Image.open(FRAMES[-1])) / 2  # still a fused bracket


def test_a_group_job_charges_exactly_one_credit(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 3)
    frames = add_photos(context, user, _frames(FRAMES[:3]))
    bracket = _group(client, headers, frames[0].shoot_id, [f.id for f in frames])

    job = _enhance(context, client, headers, bracket["id"], window_pull=True)

    assert job["status"] == "succeeded", job["error_message"]
    assert job["params"]["window_pull"] is True
    assert balance(context, user.id) == 2
    assert job_charges(context, user.id) == 1


def test_two_jobs_merging_one_group_at_once_keep_one_merge_whole(make_app) -> None:
    """Both jobs were claimed while the group was unmerged, so both merge it (one pulling the
    windows, a different photo); the one recorded first is the group's photo, and the other's
    merge neither replaces its bytes nor is left behind in storage."""
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 2)
    frames = add_photos(context, user, _frames(FRAMES[:3]))
    bracket = _group(client, headers, frames[0].shoot_id, [f.id for f in frames])
    for params in ({}, {"window_pull": True}):
        body = {"bracket_id": bracket["id"], "preset": "enhance", "params": params}
        assert client.post("/api/jobs", json=body, headers=headers).status_code == 201
    with context.session() as session:
        first, second = claim_jobs(session=session, owner="worker-a", limit=2, lease_seconds=300)

    runner = Worker(context, concurrency=1).runner
    runner.run(first)
    runner.run(second)

    merged, photo = _merged_photo(context, bracket["id"])
    assert merged.bytes == len(context.storage.get_bytes(merged.storage_key))
    assert photo.size == (merged.width, merged.height)
    assert merged.storage_key == merged_keys(merged, first.job.id)[0]
    assert all(context.storage.head(key) is None for key in merged_keys(merged, second.job.id))
    assert balance(context, user.id) == 0 and job_charges(context, user.id) == 2


def test_a_photo_grouped_while_its_deletion_waits_is_kept(pg_context) -> None:
    """A deletion that read the photo as ungrouped, then waited for the user's lock while a grouping
    committed, refuses (409) instead of deleting a frame from under its new group."""
    context = pg_context
    user, _ = user_with_credits(context, 1)
    frames = add_photos(context, user, _frames(FRAMES[:2]))
    with context.session() as grouping:
        lock_credits(grouping, user.id)  # what create_bracket holds until it commits
        bracket = Bracket(user_id=user.id, shoot_id=frames[0].shoot_id)
        grouping.add(bracket)
        grouping.flush()
        grouping.execute(update(Asset).where(Asset.id.in_([f.id for f in frames])).values(bracket_id=bracket.id))
        outcome: list[BaseException | None] = []

        def delete_first_frame() -> None:
            with context.session() as session:
                try:
                    delete_asset(session=session, storage=context.storage, settings=context.settings, user_id=user.id,
                                 asset_id=frames[0].id)
                    outcome.append(None)
                except Conflict as exc:
                    outcome.append(exc)

        deleting = threading.Thread(target=delete_first_frame)
        deleting.start()
        _wait_for_a_lock_wait(context)
        grouping.commit()
    deleting.join(timeout=30)

    assert isinstance(outcome[0], Conflict) and "part of a bracket" in str(outcome[0])
    with context.session() as session:
        assert session.get(Asset, frames[0].id).bracket_id == bracket.id


def _wait_for_a_lock_wait(context, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with context.session() as session:
            if session.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one():
                return
        time.sleep(0.05)
    raise AssertionError("the deletion never waited for the lock")


def test_a_batch_of_groups_and_photos_charges_one_credit_each(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 2)
    frames = add_photos(context, user, _frames(FRAMES[1:3] + [FRAMES[0]]))
    bracket = _group(client, headers, frames[0].shoot_id, [frames[0].id, frames[1].id])

    body = {"asset_ids": [str(frames[2].id)], "bracket_ids": [bracket["id"]], "preset": "enhance"}
    response = client.post("/api/jobs/batch", json=body, headers=headers)

    assert response.status_code == 201, response.text
    assert [job["bracket_id"] for job in response.json()["jobs"]] == [None, bracket["id"]]
    assert Worker(context, concurrency=1, drain=True).run() == 0
    assert balance(context, user.id) == 0 and job_charges(context, user.id) == 2


def test_photos_of_different_scenes_fail_uncharged(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 1)
    other_scene = Image.open(ASTRONAUT).convert("RGB").resize((512, 768))
    frames = add_photos(context, user, [FRAMES[1].read_bytes(), other_scene, FRAMES[2].read_bytes()])
    bracket = _group(client, headers, frames[0].shoot_id, [f.id for f in frames])

    job = _enhance(context, client, headers, bracket["id"])

    assert job["status"] == "failed"
    assert job["error_code"] == "not_one_bracket"
    assert job["error_message"].startswith("These photos do not look like one bracket.")
    assert balance(context, user.id) == 1 and job_charges(context, user.id) == 0
    assert outputs_of(context, job["id"]) == []


def test_bad_groups_are_refused_with_a_reason(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 1)
    stranger, stranger_headers = user_with_credits(context, 1)
    shoot = add_shoot(context, user)
    mine = add_photos(context, user, [Image.new("RGB", (8, 8), (i, i, i)) for i in range(10)], shoot=shoot)
    elsewhere = add_photos(context, user, [Image.new("RGB", (8, 8))])[0]  # another shoot of mine
    theirs = add_photos(context, stranger, [Image.new("RGB", (8, 8))])[0]
    url = f"/api/shoots/{shoot.id}/brackets"

    def post(ids, to=url, who=headers):
        return client.post(to, json={"asset_ids": [str(i) for i in ids]}, headers=who)

    assert post([mine[0].id, theirs.id]).status_code == 404
    assert post([mine[0].id, elsewhere.id]).status_code == 404
    assert post([mine[0].id, mine[1].id], who=stranger_headers).status_code == 404
    assert post([mine[0].id]).status_code == 422
    assert post([mine[0].id, mine[0].id]).status_code == 422  # one photo twice is one photo
    too_many = post([m.id for m in mine])
    assert too_many.status_code == 422 and too_many.json()["detail"] == "A bracket groups 2 to 9 photos."
    bracket = post([mine[0].id, mine[1].id]).json()
    assert post([mine[1].id, mine[2].id]).status_code == 409  # already in a group
    # Another user's group: not theirs to enhance, list or ungroup.
    job = client.post("/api/jobs", json={"bracket_id": bracket["id"], "preset": "enhance"}, headers=stranger_headers)
    assert job.status_code == 404
    assert client.get(url, headers=stranger_headers).status_code == 404
    assert client.delete(f"/api/brackets/{bracket['id']}", headers=stranger_headers).status_code == 404
    # A frame goes with its group only: ungroup first.
    assert client.delete(f"/api/assets/{mine[0].id}", headers=headers).status_code == 409
    assert balance(context, user.id) == 1 and balance(context, stranger.id) == 1


def test_ungrouping_frees_the_photos_and_keeps_enhanced_versions(make_app) -> None:
    context, client = make_app(NoopEngine())
    user, headers = user_with_credits(context, 1)
    frames = add_photos(context, user, _frames(FRAMES[1:3]))
    shoot_id = frames[0].shoot_id
    empty = _group(client, headers, shoot_id, [f.id for f in frames])
    assert client.delete(f"/api/brackets/{empty['id']}", headers=headers).status_code == 204
    enhanced = _group(client, headers, shoot_id, [f.id for f in frames])
    job = _enhance(context, client, headers, enhanced["id"])
    assert job["status"] == "succeeded", job["error_message"]

    assert client.delete(f"/api/brackets/{enhanced['id']}", headers=headers).status_code == 204

    listed = client.get(f"/api/shoots/{shoot_id}/brackets", headers=headers).json()
    assert listed["groups"] == []
    photos = client.get(f"/api/shoots/{shoot_id}/assets", headers=headers).json()
    assert [p["bracket_id"] for p in photos] == [None, None, None]
    # The merged photo stays as a photo of the shoot, with its enhanced version.
    assert [len(p["outputs"]) for p in photos] == [0, 0, 1]
    assert client.delete(f"/api/brackets/{enhanced['id']}", headers=headers).status_code == 404


def _shot(image: Image.Image, *, at: datetime, exposure: float, bias: float = 0.0, camera: str = "X-T4",
          focal: float = 16.0) -> bytes:
    """A JPEG copy of `image` with the EXIF a camera writes for a frame."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "FUJIFILM", camera
    detail = exif.get_ifd(0x8769)
    detail[0x9003] = at.strftime("%Y:%m:%d %H:%M:%S")
    detail[0x829A], detail[0x9204], detail[0x920A] = exposure, bias, focal
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_groups_are_suggested_from_exif(backend: Backend) -> None:
    _, headers = make_user(backend.context)
    shoot_id = new_shoot(backend, headers)
    scene = Image.open(FRAMES[1]).convert("RGB").resize((128, 192))
    start = datetime(2026, 5, 1, 10, 0, 0)
    shots = {
        # Kitchen: three frames a second apart, -2/0/+2 EV.
        "kitchen_1.jpg": _shot(scene, at=start, exposure=1 / 60, bias=0.0),
        "kitchen_2.jpg": _shot(scene, at=start + timedelta(seconds=1), exposure=1 / 250, bias=-2.0),
        "kitchen_3.jpg": _shot(scene, at=start + timedelta(seconds=2), exposure=1 / 15, bias=2.0),
        # A single of the garden, shot 40 s later with a longer lens.
        "garden.jpg": _shot(scene, at=start + timedelta(seconds=40), exposure=1 / 500, focal=23.0),
        # Living room: five frames, the longest 1 s, so the next one starts 2 s later.
        **{f"living_{i}.jpg": _shot(scene, at=start + timedelta(seconds=90 + 2 * i), exposure=e)
           for i, e in enumerate([1 / 30, 1 / 120, 1 / 8, 1 / 500, 1.0])},
        # Then a new sequence at once: the same exposure as before starts the next bracket.
        "dining_1.jpg": _shot(scene, at=start + timedelta(seconds=101), exposure=1 / 30),
        "dining_2.jpg": _shot(scene, at=start + timedelta(seconds=102), exposure=1 / 120),
    }
    ids = {}
    for name in ["garden.jpg", "living_2.jpg", *sorted(set(shots) - {"garden.jpg", "living_2.jpg"})]:
        result = upload(backend, headers, shoot_id, shots[name], filename=name)
        assert result.complete is not None and result.complete.status_code == 200, name
        ids[result.asset_id] = name

    listed = backend.client.get(f"/api/shoots/{shoot_id}/brackets", headers=headers).json()

    suggested = sorted(sorted(ids[a] for a in group) for group in listed["suggestions"])
    assert suggested == [
        ["dining_1.jpg", "dining_2.jpg"],
        ["kitchen_1.jpg", "kitchen_2.jpg", "kitchen_3.jpg"],
        [f"living_{i}.jpg" for i in range(5)],
    ]
    # Accepting a suggestion groups those photos, and they are no longer suggested.
    kitchen = next(group for group in listed["suggestions"] if ids[group[0]].startswith("kitchen"))
    response = backend.client.post(f"/api/shoots/{shoot_id}/brackets", json={"asset_ids": kitchen}, headers=headers)
    assert response.status_code == 201
    after = backend.client.get(f"/api/shoots/{shoot_id}/brackets", headers=headers).json()
    assert len(after["suggestions"]) == 2 and [g["asset_ids"] for g in after["groups"]] == [kitchen]
