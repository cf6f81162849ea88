"""Settle abandoned uploads in the background of a worker process."""

from __future__ import annotations

import logging
import threading

from luster_app.context import AppContext
from luster_app.services.uploads import settle_abandoned_uploads

log = logging.getLogger(__name__)


class UploadSweeper:
    """Once at start and then every `interval` seconds, finish or reject the photos whose browser
    went away mid-upload (`settle_abandoned_uploads`). A failing pass (database or storage
    unavailable) is logged and tried again on the next one."""

    def __init__(self, context: AppContext, *, interval: float) -> None:
        self._context = context
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass in progress, if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                with self._context.session() as session:
                    settle_abandoned_uploads(session=session, storage=self._context.storage, settings=self._context.settings)
            except Exception:  # noqa: BLE001
                log.warning("settling abandoned uploads failed; trying again in %.0fs", self._interval, exc_info=True)
            if self._stop.wait(self._interval):
                return
