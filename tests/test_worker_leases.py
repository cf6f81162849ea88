"""A lease belongs to one claim, not to a worker process; stale jobs are claimed first.

A worker that loses the database for longer than the lease may claim its own in-flight job again
(its lease expired): the first attempt must then write nothing, and no attempt may overwrite or
delete an output that another attempt of the job committed and was charged for.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import update

from luster_app.context import AppContext
from luster_app.engines.base import EngineRequest
from luster_app.models import Job, JobStatus, utcnow
from luster_app.services.job_queue import claim_jobs
from luster_app.services.jobs import JobOptions, create_batch
from luster_app.storage.keys import output_thumb_key
from tests.engines_for_tests import indexed_image
from tests.jobs_support import add_photo, add_shoot, balance, job_charges, outputs_of, user_with_credits, worker_context
from worker.heartbeat import LeaseKeeper
from worker.pipeline import ImageLimits
from worker.retry import RetryPolicy
from worker.runner import ATTEMPT_KEY_CHARS, JobRunner


class NumberingEngine:
    """Paints each output in a shade that numbers the call (40, 80, 120...), so a test can tell
    which attempt's render a stored output is."""

    name = "test-numbering"
    model = ""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def edit(self, request: EngineRequest) -> Image.Image:
        with self._lock:
            self.calls += 1
            shade = 40 * self.calls
        return Image.new("RGB", request.image.size, (shade, shade, shade))


def shade_of(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return round(image.convert("L").getpixel((image.width // 2, image.height // 2)) / 40) * 40


@pytest.fixture
def context(settings, db_url) -> Iterator[AppContext]:
    ctx = worker_context(settings, db_url, NumberingEngine())
    yield ctx
    ctx.db.dispose()


def _queue(context: AppContext, count: int = 1) -> tuple[uuid.UUID, list[Job]]:
    user, _ = user_with_credits(context, count)
    shoot = add_shoot(context, user)
    photos = [add_photo(context, user, indexed_image(i), shoot=shoot).id for i in range(count)]
    with context.session() as session:
        jobs = create_batch(
            session=session, user_id=user.id, asset_ids=photos, preset="enhance", params={}, options=JobOptions.for_context(context)
        )
    return user.id, jobs


def _claim(context: AppContext, owner: str, limit: int = 1):
    with context.session() as session:
        return claim_jobs(session=session, owner=owner, limit=limit, lease_seconds=60)


def _expire(context: AppContext, job_id: uuid.UUID) -> None:
    with context.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def _runner(context: AppContext, owner: str) -> JobRunner:
    settings = context.settings
    return JobRunner(
        context, owner=owner, policy=RetryPolicy.from_settings(settings), limits=ImageLimits.from_settings(settings),
        leases=LeaseKeeper(lambda leases: set(), interval=60),  # never started: the lease is taken away by hand
    )


def _job(context: AppContext, job_id: uuid.UUID) -> Job:
    with context.session() as session:
        return session.get(Job, job_id)


def test_a_stale_attempt_of_the_same_worker_process_writes_nothing(context) -> None:
    """Worker A lost the database longer than the lease and claimed its own job again: the first
    attempt, still running in A, must neither finish the job nor charge for it."""
    user_id, [job] = _queue(context)
    [first] = _claim(context, "worker-a")
    _expire(context, job.id)
    [second] = _claim(context, "worker-a")
    assert second.reclaimed

    _runner(context, "worker-a").run(first)

    assert _job(context, job.id).status == JobStatus.PROCESSING
    assert outputs_of(context, job.id) == []
    assert job_charges(context) == 0

    _runner(context, "worker-a").run(second)

    assert _job(context, job.id).status == JobStatus.SUCCEEDED
    [output] = outputs_of(context, job.id)
    assert shade_of(context.storage.get_bytes(output.storage_key)) == 80  # the second render
    assert job_charges(context) == 1
    assert balance(context, user_id) == 0


def test_a_stale_attempt_never_overwrites_the_committed_output(context) -> None:
    user_id, [job] = _queue(context)
    [stale] = _claim(context, "worker-a")
    _expire(context, job.id)
    [current] = _claim(context, "worker-b")
    _runner(context, "worker-b").run(current)  # renders shade 40, stores, finishes, is charged

    _runner(context, "worker-a").run(stale)  # renders shade 80, stores, finds its lease gone

    [output] = outputs_of(context, job.id)
    assert shade_of(context.storage.get_bytes(output.storage_key)) == 40
    [thumb_key] = [key for key in _stored_keys(context) if key.endswith("_thumb.jpg") and "outputs/" in key]
    assert shade_of(context.storage.get_bytes(thumb_key)) == 40
    assert job_charges(context) == 1
    assert balance(context, user_id) == 0


def test_a_stale_attempt_whose_thumbnail_fails_to_store_deletes_only_its_own_files(context) -> None:
    user_id, [job] = _queue(context)
    [stale] = _claim(context, "worker-a")
    _expire(context, job.id)
    [current] = _claim(context, "worker-b")
    _runner(context, "worker-b").run(current)
    [output] = outputs_of(context, job.id)
    committed = context.storage.get_bytes(output.storage_key)
    # A folder where the stale attempt's thumbnail goes: its PUT fails for real.
    original = stale.original
    blocked = output_thumb_key(
        original.user_id, original.shoot_id, original.id, job.id, stale.next_version,
        attempt=stale.job.lease_token[:ATTEMPT_KEY_CHARS],
    )
    context.storage.path_for(blocked).mkdir(parents=True)

    _runner(context, "worker-a").run(stale)

    assert context.storage.get_bytes(output.storage_key) == committed
    assert job_charges(context) == 1
    assert _job(context, job.id).status == JobStatus.SUCCEEDED


def _stored_keys(context: AppContext) -> list[str]:
    root = context.storage.root
    return [str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()]


def test_a_stale_job_is_claimed_before_a_large_batch_queued_after_it(context) -> None:
    """A job whose worker died waits a lease, not behind every job queued meanwhile."""
    _, jobs = _queue(context, 6)
    [died] = _claim(context, "worker-a")  # the oldest job; its worker dies
    _expire(context, died.job.id)

    [taken] = _claim(context, "worker-b")

    assert (taken.job.id, taken.reclaimed) == (died.job.id, True)
    assert len(_claim(context, "worker-b", limit=10)) == len(jobs) - 1  # then the batch
