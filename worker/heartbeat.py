"""Keep the leases of a worker's jobs alive while their slow steps run."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Lease:
    """One job's lease as its runner sees it: `lost` is set once another worker owns the job."""

    def __init__(self) -> None:
        self.lost = threading.Event()


class LeaseKeeper:
    """The heartbeat of one worker process: every `interval` seconds it extends the leases of all
    jobs in flight with one call of `extend` (job ids in, the ids still held out), instead of a
    thread and a statement per job.

    A failing call (database restarting) is logged and tried on the next beat: the lease is long
    enough to ride out a few missed beats.
    """

    def __init__(self, extend: Callable[[list[uuid.UUID]], set[uuid.UUID]], *, interval: float) -> None:
        self._extend = extend
        self._interval = interval
        self._leases: dict[uuid.UUID, Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @contextmanager
    def keep(self, job_id: uuid.UUID) -> Iterator[Lease]:
        """Heartbeat this job's lease for the duration of the block."""
        lease = Lease()
        with self._lock:
            self._leases[job_id] = lease
        try:
            yield lease
        finally:
            with self._lock:
                self._leases.pop(job_id, None)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                leases = dict(self._leases)
            if not leases:
                continue
            try:
                held = self._extend(list(leases))
            except Exception:  # noqa: BLE001
                log.warning("lease heartbeat failed; trying again in %.0fs", self._interval, exc_info=True)
                continue
            for job_id, lease in leases.items():
                if job_id not in held:
                    lease.lost.set()
