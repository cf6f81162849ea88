"""A batch's progress on the shoot page: done of total, and the time left from recent job times."""

from __future__ import annotations

from datetime import timedelta

from PIL import Image

from luster_app.context import AppContext
from luster_app.models import Job, JobStatus, utcnow
from luster_app.pages.shoot_compare import seconds_until_resign
from luster_app.services.gallery import BatchProgress, batch_progress
from tests.conftest import make_user
from tests.jobs_support import add_photos


def _jobs(context: AppContext, user, photos, specs) -> None:  # noqa: ANN001
    """`specs`: (status, created seconds ago, started seconds ago or None, finished seconds ago or None)."""
    now = utcnow()

    def ago(seconds: float | None):  # noqa: ANN202
        return None if seconds is None else now - timedelta(seconds=seconds)

    with context.session() as session:
        for photo, (status, created, started, finished) in zip(photos, specs, strict=True):
            session.add(Job(user_id=user.id, asset_id=photo.id, preset="enhance", engine="classic", status=status,
                            created_at=ago(created), started_at=ago(started), finished_at=ago(finished)))
        session.commit()


def _progress(context: AppContext, user, shoot_id) -> BatchProgress:  # noqa: ANN001
    with context.session() as session:
        return batch_progress(session=session, user_id=user.id, shoot_id=shoot_id)


def test_nothing_in_flight_is_no_batch(context: AppContext) -> None:
    user, _ = make_user(context)
    photos = add_photos(context, user, [Image.new("RGB", (8, 8))])
    _jobs(context, user, photos, [(JobStatus.SUCCEEDED, 600, 590, 580)])
    assert _progress(context, user, photos[0].shoot_id) == BatchProgress(0, 0, None)


def test_a_batch_under_way_is_timed_by_its_own_pace(context: AppContext) -> None:
    user, _ = make_user(context)
    photos = add_photos(context, user, [Image.new("RGB", (8, 8))] * 6)
    earlier = add_photos(context, user, [Image.new("RGB", (8, 8))], shoot=None)
    _jobs(context, user, earlier, [(JobStatus.SUCCEEDED, 7200, 7190, 7100)])  # another shoot, long ago
    # Queued 120 s ago; two done (the later 60 s ago: 30 s a photo), one failed, three to go.
    _jobs(context, user, photos, [
        (JobStatus.SUCCEEDED, 120, 110, 90), (JobStatus.SUCCEEDED, 120, 100, 60), (JobStatus.FAILED, 120, 95, 70),
        (JobStatus.PROCESSING, 120, 50, None), (JobStatus.QUEUED, 120, None, None), (JobStatus.QUEUED, 120, None, None),
    ])
    progress = _progress(context, user, photos[0].shoot_id)
    assert (progress.done, progress.total) == (3, 6)
    # Three finished in the 60 s from the batch's start to the last finish: 20 s a photo, three left.
    assert abs(progress.eta_seconds - 60) < 2
    assert progress.summary == "3 of 6 done · about 1 min left"


def test_a_new_batch_is_timed_by_the_users_recent_jobs(context: AppContext) -> None:
    user, _ = make_user(context)
    photos = add_photos(context, user, [Image.new("RGB", (8, 8))] * 4)
    # Earlier jobs of this shoot's photos took 40, 50 and 300 s: the median, 50 s, times three queued.
    _jobs(context, user, photos[:3], [(JobStatus.SUCCEEDED, 3600, 3500, 3460), (JobStatus.SUCCEEDED, 3600, 3400, 3350),
                                      (JobStatus.SUCCEEDED, 3600, 3300, 3000)])
    _jobs(context, user, photos[:3], [(JobStatus.QUEUED, 5, None, None)] * 3)
    progress = _progress(context, user, photos[0].shoot_id)
    assert (progress.done, progress.total, progress.eta_seconds) == (0, 3, 150)
    assert progress.summary == "0 of 3 done · about 2 min left"
    assert BatchProgress(1, 4, None).summary == "1 of 4 done · estimating time left"
    assert BatchProgress(3, 4, 20).summary == "3 of 4 done · under a minute left"


def test_compare_urls_are_signed_again_before_they_expire() -> None:
    ttl = 900
    assert seconds_until_resign(1000.0, 1000.0, ttl) == 720  # at 80% of their life
    assert seconds_until_resign(1000.0, 1700.0, ttl) == 20
    assert seconds_until_resign(1000.0, 2000.0, ttl) == 0  # overdue: now
