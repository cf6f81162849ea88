"""Keep the leases of a worker's jobs alive while their slow steps run."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Lease:
    """One job's lease as its runner sees it: `lost` is set once another worker owns the job."""

    def __init__(self) -> None:
        self.lost = threading.Event()


class _Beating(ABC):
    """A daemon thread that runs `_beat` until `stop`: the common part of both heartbeats below."""

    def __init__(self, *, interval: float, name: str) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @abstractmethod
    def _beat(self) -> None:
        """One heartbeat loop: beat every `_interval` seconds until `_stop` is set."""


class LeaseKeeper(_Beating):
    """The heartbeat of one worker process: every `interval` seconds it extends the leases of all
    attempts in flight with one call of `extend` (lease token to job id in, the tokens still held
    out), instead of a thread and a statement per job. Leases are kept per claim (token), not per
    job: the same job may be in flight twice here, a stale attempt beside the one that took it
    over, and only the latter's lease is held.

    A failing call (database restarting) is logged and tried on the next beat: the lease is long
    enough to ride out a few missed beats.
    """

    def __init__(self, extend: Callable[[dict[str, uuid.UUID]], set[str]], *, interval: float) -> None:
        super().__init__(interval=interval, name="lease-keeper")
        self._extend = extend
        self._leases: dict[str, tuple[uuid.UUID, Lease]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def keep(self, job_id: uuid.UUID, token: str) -> Iterator[Lease]:
        """Heartbeat this claim's lease (`token`, on job `job_id`) for the duration of the block."""
        lease = Lease()
        with self._lock:
            self._leases[token] = (job_id, lease)
        try:
            yield lease
        finally:
            with self._lock:
                self._leases.pop(token, None)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                leases = dict(self._leases)
            if not leases:
                continue
            try:
                held = self._extend({token: job_id for token, (job_id, _) in leases.items()})
            except Exception:  # noqa: BLE001
                log.warning("lease heartbeat failed; trying again in %.0fs", self._interval, exc_info=True)
                continue
            for token, (_, lease) in leases.items():
                if token not in held:
                    lease.lost.set()


class Presence(_Beating):
    """The worker process's own heartbeat: every `interval` seconds, `beat()` records that it is
    alive (its row in `workers`), from a thread of its own, so it keeps beating whatever its jobs
    are doing (a slow engine call waits on the network; decodes release the GIL). Other workers take
    over the jobs of a worker not seen for WORKER_DEAD_AFTER_SECONDS: a killed worker's jobs run
    again within that, while a live one's are never taken over, however long they take.

    A failing beat (database restarting) is logged and tried on the next one; if the database stays
    away past the dead limit, this worker's jobs may run elsewhere, and its lease tokens keep its own
    late finishes from writing anything.
    """

    def __init__(self, beat: Callable[[], None], *, interval: float) -> None:
        super().__init__(interval=interval, name="worker-heartbeat")
        self._beat_once = beat

    def _beat(self) -> None:
        while True:
            try:
                self._beat_once()
            except Exception:  # noqa: BLE001
                log.warning("worker heartbeat failed; trying again in %.0fs", self._interval, exc_info=True)
            if self._stop.wait(self._interval):
                return
