"""One claimed job from start to end: render, store, finish; or retry, fail, or let go."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from luster_app.context import AppContext
from luster_app.db import HeldConnection
from luster_app.logging import log_context
from luster_app.metrics import JOB_SECONDS, JOBS_FINISHED
from luster_app.models import Asset, AssetStatus, Job
from luster_app.services.brackets import bracket_frames, record_merged
from luster_app.services.job_queue import (
    ClaimedJob,
    FinishOutcome,
    OutputFiles,
    fail_job,
    finish_success,
    next_output_version,
    schedule_retry,
)
from luster_app.storage.keys import output_key, output_thumb_key
from worker.brackets import merge_frames, merged_keys
from worker.heartbeat import LeaseKeeper
from worker.pipeline import ImageLimits, Rendered, render
from worker.retry import AttemptError, RetryPolicy, classify

log = logging.getLogger(__name__)
T = TypeVar("T")

# Concurrent jobs on one photo can race for a version number; a few tries always settle it.
VERSION_TRIES = 5
# The part of the lease token that names an attempt's output keys: unique enough among one job's attempts.
ATTEMPT_KEY_CHARS = 16


def is_connection_error(exc: BaseException) -> bool:
    """A dropped or refused database connection (restart, failover), as opposed to a bad query."""
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or exc.__class__.__name__ in ("OperationalError", "InterfaceError"))


class JobRunner:
    """Runs claimed jobs for one worker (`owner`); safe to call from many threads at once."""

    def __init__(
        self, context: AppContext, *, owner: str, policy: RetryPolicy, limits: ImageLimits, leases: LeaseKeeper
    ) -> None:
        self.context = context
        self.owner = owner
        self.policy = policy
        self.limits = limits
        self.leases = leases
        self.lease_seconds = context.settings.job_lease_seconds

    def db(self, operation: Callable[[Any], T], *, held: HeldConnection | None = None) -> T:
        """Run `operation` in a fresh session, or on `held` (a job slot's connection, for the
        steps that take one: services/job_queue.py), riding out a database restart for up to
        half a lease by reconnecting with backoff."""
        deadline = time.monotonic() + self.lease_seconds / 2
        delay = 0.1
        while True:
            try:
                if held is not None:
                    return held.run(operation)
                with self.context.session() as session:
                    return operation(session)
            except DBAPIError as exc:
                if not is_connection_error(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("database connection lost; reconnecting in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def run(self, claimed: ClaimedJob, *, held: HeldConnection | None = None) -> None:
        """Take the job to `succeeded`, `failed` or back to `queued`; never raises. `held`: the
        job slot's connection, for the finish (None: a session)."""
        job = claimed.job
        started = time.perf_counter()
        outcome = self._attempt(claimed, held)
        JOB_SECONDS.labels(job.preset, job.engine, outcome).observe(time.perf_counter() - started)
        if outcome in ("succeeded", "failed", "needs_review"):
            JOBS_FINISHED.labels(job.preset, job.engine, outcome).inc()

    def _attempt(self, claimed: ClaimedJob, held: HeldConnection | None) -> str:
        """One attempt; how it ended: succeeded, needs_review, failed, retried or lost (the job was claimed again)."""
        job = claimed.job
        outcome = "lost"
        corrections = None  # what the corrections did, once they ran: kept on the job however the attempt ends
        with log_context(job_id=job.id, user_id=job.user_id), self.leases.keep(job.id, job.lease_token) as lease:
            if job.attempts > job.max_attempts:
                # Its workers kept dying mid-job (a crash on this photo?): stop trying.
                crashed = AttemptError("worker_crashed", "Processing this photo was interrupted too many times.", False)
                return self._settle_failure(job, crashed)
            try:
                if claimed.original is None:
                    raise FileNotFoundError("the original photo was deleted")
                engine = self.context.image_engine
                # A group merged before, with no window pull asked: its stored merge is the photo.
                merge = job.bracket_id is not None and (
                    claimed.original.status == AssetStatus.PENDING or job.params.get("window_pull")
                )
                merged = self._merge(claimed) if merge else None
                rendered = render(
                    job, claimed.original, storage=self.context.storage, engine=engine, limits=self.limits, data=merged
                )
                corrections = rendered.corrections
                if not lease.lost.is_set():
                    outcome = self._store_and_finish(claimed, rendered, held)
            except Exception as exc:  # noqa: BLE001  (every failure is classified, none escapes)
                if not lease.lost.is_set():
                    error = classify(exc)
                    # A bug (not a known failure) is an error: error tracking gets it, with the job id.
                    level = logging.ERROR if error.code == "internal_error" else logging.INFO
                    log.log(level, "attempt %d failed: %s", job.attempts, exc.__class__.__name__, exc_info=True)
                    outcome = self._settle_failure(job, error, corrections)
            if lease.lost.is_set():
                log.warning("lease lost: the job was claimed again; this attempt wrote nothing")
        return outcome

    def _merge(self, claimed: ClaimedJob) -> bytes:
        """A bracket job: fuse the group's frames; the first merge is kept as the group's original."""
        job, photo = claimed.job, claimed.original
        frames = self.db(lambda session: bracket_frames(session=session, bracket_id=job.bracket_id))
        merged = merge_frames(job, frames, storage=self.context.storage, limits=self.limits)
        if photo.status == AssetStatus.PENDING:
            photo_key, thumb_key = merged_keys(photo, job.id)
            self.context.storage.put_bytes(photo_key, merged.jpeg, content_type="image/jpeg")
            self.context.storage.put_bytes(thumb_key, merged.thumb, content_type="image/jpeg")
            recorded = self.db(lambda session: record_merged(
                session=session, merged_id=photo.id, storage_key=photo_key, size=len(merged.jpeg), width=merged.width,
                height=merged.height, thumb_key=thumb_key, thumb_size=len(merged.thumb),
                thumb_width=merged.thumb_width, thumb_height=merged.thumb_height,
            ))
            if not recorded:  # another job on the group recorded its merge first
                self._delete(photo_key)
                self._delete(thumb_key)
        return merged.jpeg

    def _store_and_finish(self, claimed: ClaimedJob, rendered: Rendered, held: HeldConnection | None) -> str:
        job, original, version = claimed.job, claimed.original, claimed.next_version
        # Honest edits: an edit that redrew too much outside its preset's region is kept for its
        # owner's review, uncharged (services/review.py decides later).
        alteration, review = None, False
        if rendered.alteration is not None:
            settings = self.context.settings
            alteration = rendered.alteration.to_json()
            review = rendered.alteration.needs_review(
                outside_share=settings.review_outside_share, area_share=settings.review_area_share
            )
        for _ in range(VERSION_TRIES):
            files = self._store(job, original, rendered, version)
            outcome = self.db(
                lambda db: finish_success(  # noqa: B023
                    session=db, job=job, original=original, lease_token=job.lease_token,  # noqa: B023
                    files=files, alteration=alteration, corrections=rendered.corrections, review=review,  # noqa: B023
                ),
                held=held,
            )
            if outcome is FinishOutcome.FINISHED:
                log.info("%s: output v%d", "needs review" if review else "succeeded", version)
                return "needs_review" if review else "succeeded"
            # Lease lost (the job was claimed again) or version taken by another job on this
            # photo: no row names these files (the finish checked), and their keys are this
            # attempt's own, so deleting them touches nothing another attempt committed.
            self._delete(files.key, files.thumb_key)
            if outcome is FinishOutcome.LEASE_LOST:
                log.warning("lease lost: the job was claimed again; this attempt wrote nothing")
                return "lost"
            version = self.db(lambda session: next_output_version(session=session, original_id=original.id))
        raise RuntimeError(f"no free output version for photo {original.id} after {VERSION_TRIES} tries")

    def _store(self, job: Job, original: Asset, rendered: Rendered, version: int) -> OutputFiles:
        storage = self.context.storage
        ids = (original.user_id, original.shoot_id, original.id, job.id, version)
        attempt = job.lease_token[:ATTEMPT_KEY_CHARS]
        key, thumb_key = output_key(*ids, attempt=attempt), output_thumb_key(*ids, attempt=attempt)
        try:
            storage.put_bytes(key, rendered.jpeg, content_type="image/jpeg")
            storage.put_bytes(thumb_key, rendered.thumb, content_type="image/jpeg")
        except BaseException:
            self._delete(key, thumb_key)
            raise
        return OutputFiles(
            version=version, key=key, size=len(rendered.jpeg), width=rendered.width, height=rendered.height,
            thumb_key=thumb_key, thumb_size=len(rendered.thumb), thumb_width=rendered.thumb_width,
            thumb_height=rendered.thumb_height,
        )

    def _delete(self, *keys: str) -> None:
        for key in keys:
            try:
                self.context.storage.delete(key)
            except Exception:  # noqa: BLE001  (an orphan object costs storage, not correctness)
                log.warning("could not delete orphan object of a discarded attempt", exc_info=True)

    def _settle_failure(self, job: Job, error: AttemptError, corrections: dict[str, Any] | None = None) -> str:
        """Record the failed attempt (and what its `corrections` did, if they ran): "retried" or
        "failed", or "lost" if the lease was gone."""
        decision = self.policy.decide(error, attempt=job.attempts, max_attempts=job.max_attempts)
        common = {
            "job_id": job.id, "lease_token": job.lease_token, "attempt": job.attempts, "error_code": error.code,
            "error_message": decision.message, "corrections": corrections,
        }
        try:
            if decision.retry:
                moved = self.db(lambda session: schedule_retry(session=session, delay_seconds=decision.delay_seconds, **common))
                log.info("%s; retry in %.1fs", error.code, decision.delay_seconds)
            else:
                moved = self.db(lambda session: fail_job(session=session, **common))
                log.info("failed: %s", error.code)
        except Exception:  # noqa: BLE001
            # The lease runs out and another attempt follows: nothing is lost or charged.
            log.exception("could not record the failed attempt")
            return "lost"
        if not moved:
            return "lost"
        return "retried" if decision.retry else "failed"
