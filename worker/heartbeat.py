"""Keep a job's lease alive while its slow steps run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `extend` every `interval` seconds until the block ends.

    `extend` returns False once another worker owns the job; `lost` is then set, so the
    runner stores nothing. A failing call (database restarting) is logged and tried again
    on the next beat: the lease is long enough to ride out a few missed beats.
    """

    def __init__(self, extend: Callable[[], bool], *, interval: float, name: str = "heartbeat") -> None:
        self._extend = extend
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)
        self.lost = threading.Event()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._extend():
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001
                log.warning("lease heartbeat failed; trying again in %.0fs", self._interval, exc_info=True)
