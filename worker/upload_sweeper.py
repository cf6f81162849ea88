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

    def _run(self) -> None:
        while True:
            self._sweep()
            self.sweep_retention()
            self.sweep_deletions()
            self.sweep_rate_limits()
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
        context = self._context
        try:
            with context.session() as session:
                stale = abandoned_uploads(session=session, settings=context.settings)
        except Exception:  # noqa: BLE001
            log.warning("listing abandoned uploads failed; trying again in %.0fs", self._interval, exc_info=True)
            return
        largest_photo = self._limits.max_pixels / 1_000_000
        finished = rejected = 0
        for asset_id in stale:
            if self._stop.is_set():
                return
            try:
                with self._limits.budget.hold(largest_photo), self._limits.cpu, context.session() as session:
                    status = settle_abandoned_upload(
                        session=session, storage=context.storage, settings=context.settings, asset_id=asset_id
                    )
            except Exception:  # noqa: BLE001
                log.warning("settling abandoned upload %s failed; trying it again later", asset_id, exc_info=True)
                self._defer(asset_id)
                continue
            finished += status == AssetStatus.READY
            rejected += status == AssetStatus.REJECTED
        if stale:
            log.info("abandoned uploads: %d finished, %d rejected", finished, rejected)

    def _defer(self, asset_id: uuid.UUID) -> None:
        context = self._context
        try:
            with context.session() as session:
                defer_abandoned_upload(session=session, settings=context.settings, asset_id=asset_id)
        except Exception:  # noqa: BLE001  (the database is down too: the photo is simply tried next pass)
            log.warning("could not record the failure of abandoned upload %s", asset_id, exc_info=True)
