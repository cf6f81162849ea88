"""Settle abandoned uploads, and retry stored objects storage refused to delete, in the background
of a worker process."""

from __future__ import annotations

import logging
import threading
import uuid

from luster_app.context import AppContext
from luster_app.models import AssetStatus
from luster_app.services.ratelimit import forget_idle_buckets
from luster_app.services.retention import apply_retention
from luster_app.services.storage_cleanup import sweep_pending_deletions
from luster_app.services.uploads import abandoned_uploads, defer_abandoned_upload, settle_abandoned_upload
from worker.pipeline import ImageLimits

log = logging.getLogger(__name__)

# A photo being settled when the worker exits gets this long; the thread is a daemon, and
# settling is safe to cut short (it only ever moves a photo out of `pending` once).
EXIT_WAIT_SECONDS = 5.0
SWEEP_BATCH = 20  # photos listed at a time


class UploadSweeper:
    """Once at start and then every `interval` seconds, finish or reject the photos whose browser
    went away mid-upload (`settle_abandoned_upload`). Each photo is decoded under the worker's
    CPU slots and pixel budget, so the sweep never adds to the memory that jobs are bounded by;
    its size is not known until it is decoded, so it holds the largest a photo may be.
    A photo that fails (database or storage unavailable) is logged and tried again after a
    backoff of its own; the photos after it are not held up, in this pass or the next."""

    def __init__(self, context: AppContext, *, interval: float, limits: ImageLimits) -> None:
        self._context = context
        self._interval = interval
        self._limits = limits
        self._stop = threading.Event()
        self._swept_once = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Start no further photo (the worker is winding down)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop, waiting a little for the photo in progress."""
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(EXIT_WAIT_SECONDS)

    def swept_once(self, timeout: float) -> bool:
        """Whether the first pass is over, waiting up to `timeout` seconds for it: a worker that
        drains leaves no abandoned upload spinning that it could have settled."""
        return self._swept_once.wait(timeout)

    def _run(self) -> None:
        while True:
            try:
                self._sweep()
                self.sweep_retention()
                self.sweep_deletions()
                self.sweep_rate_limits()
            finally:
                self._swept_once.set()
            if self._stop.wait(self._interval):
                return

    def sweep_retention(self) -> None:
        """Delete the photos older than ORIGINAL_RETENTION_DAYS, where it is set."""
        context = self._context
        if not context.settings.original_retention_days:
            return
        try:
            with context.session() as session:
                apply_retention(session=session, storage=context.storage, settings=context.settings)
        except Exception:  # noqa: BLE001
            log.warning("applying photo retention failed; trying again in %.0fs", self._interval, exc_info=True)

    def sweep_deletions(self) -> None:
        """Delete again the objects storage refused earlier (a photo or account deleted during an
        outage); each one still refused waits longer before its next try."""
        context = self._context
        try:
            with context.session() as session:
                deleted, failing = sweep_pending_deletions(session=session, storage=context.storage)
        except Exception:  # noqa: BLE001
            log.warning("retrying stored-object deletions failed; trying again in %.0fs", self._interval, exc_info=True)
            return
        if deleted or failing:
            log.info("stored objects: %d deleted, %d still refused by storage", deleted, failing)

    def sweep_rate_limits(self) -> None:
        """Forget the rate-limit buckets unused for a day (one row per address, email and user)."""
        try:
            with self._context.session() as session:
                forget_idle_buckets(session=session)
        except Exception:  # noqa: BLE001
            log.warning("forgetting idle rate-limit buckets failed; trying again in %.0fs", self._interval, exc_info=True)

    def _sweep(self) -> None:
        """Every abandoned upload due, a batch at a time: a phone that uploaded a hundred photos
        and closed its tab must not wait one interval per batch. A photo is tried once a pass."""
        tried: set[uuid.UUID] = set()
        finished = rejected = 0
        while not self._stop.is_set():
            try:
                with self._context.session() as session:
                    batch = abandoned_uploads(session=session, settings=self._context.settings, limit=SWEEP_BATCH)
            except Exception:  # noqa: BLE001
                log.warning("listing abandoned uploads failed; trying again in %.0fs", self._interval, exc_info=True)
                break
            fresh = [asset_id for asset_id in batch if asset_id not in tried]
            for asset_id in fresh:
                if self._stop.is_set():
                    break
                status = self._settle(asset_id)
                finished += status == AssetStatus.READY
                rejected += status == AssetStatus.REJECTED
            tried.update(fresh)
            if len(batch) < SWEEP_BATCH or not fresh:
                break
        if tried:
            log.info("abandoned uploads: %d finished, %d rejected", finished, rejected)

    def _settle(self, asset_id: uuid.UUID) -> AssetStatus | None:
        context = self._context
        largest_photo = self._limits.max_pixels / 1_000_000
        try:
            with self._limits.budget.hold(largest_photo), self._limits.cpu, context.session() as session:
                return settle_abandoned_upload(session=session, storage=context.storage, settings=context.settings, asset_id=asset_id)
        except Exception:  # noqa: BLE001
            log.warning("settling abandoned upload %s failed; trying it again later", asset_id, exc_info=True)
            self._defer(asset_id)
            return None

    def _defer(self, asset_id: uuid.UUID) -> None:
        context = self._context
        try:
            with context.session() as session:
                defer_abandoned_upload(session=session, settings=context.settings, asset_id=asset_id)
        except Exception:  # noqa: BLE001  (the database is down too: the photo is simply tried next pass)
            log.warning("could not record the failure of abandoned upload %s", asset_id, exc_info=True)
