"""The worker loop: claim due jobs into free job slots (threads), stop gracefully."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid

from sqlalchemy.exc import DBAPIError

from luster_app.context import AppContext
from luster_app.db import HeldConnection, is_postgres, make_engine
from luster_app.metrics import WORKER_LAST_CLAIM, WORKER_SLOTS, WORKER_SLOTS_IN_USE
from luster_app.services.job_queue import ClaimedJob, claim_jobs, extend_leases, release_job, worker_beat, worker_gone
from worker.health import HealthServer, Liveness
from worker.heartbeat import LeaseKeeper, Presence
from worker.pipeline import ImageLimits, one_thread_per_image_step, return_photo_memory_to_the_os
from worker.retry import RetryPolicy
from worker.runner import JobRunner
from worker.signals import graceful_stop
from worker.upload_sweeper import UploadSweeper

log = logging.getLogger(__name__)

MAX_CLAIM_BACKOFF = 10.0
CLAIM_GATHER_SECONDS = 0.01
# A draining worker waits this long at most for its first sweep of abandoned uploads (storage
# that hangs makes each photo take minutes); what is left is settled by the next worker's sweep.
DRAIN_SWEEP_WAIT_SECONDS = 120.0
# How long a stopping worker waits for its idle job slots to end (they end at once).
SLOT_END_WAIT_SECONDS = 2.0


class Worker:
    """Runs up to `concurrency` jobs at once until stopped, or with `drain` until nothing is due.

    Engine calls wait on the network, so each job slot is a thread; CPU- and memory-heavy image
    steps are bounded separately (`ImageLimits`). The main thread claims jobs into free slots and
    handles signals; a background thread settles uploads whose browser went away. Slot threads are daemons: after the grace period, jobs still running are
    released to the queue and the process may exit.
    """

    def __init__(self, context: AppContext, *, concurrency: int | None = None, drain: bool = False, name: str | None = None) -> None:
        settings = context.settings
        self.context = context
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.drain = drain
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_seconds = settings.worker_poll_seconds
        self.grace_seconds = settings.worker_grace_seconds
        self.leases = LeaseKeeper(self._extend_leases, interval=settings.job_lease_seconds / 3)
        self.presence = Presence(self._beat, interval=settings.worker_heartbeat_seconds)
        limits = ImageLimits.from_settings(settings)  # shared: one bound on the process's decoded photos
        self.upload_sweeper = UploadSweeper(context, interval=settings.worker_upload_sweep_seconds, limits=limits)
        self.runner = JobRunner(
            context, owner=self.owner, policy=RetryPolicy.from_settings(settings), limits=limits, leases=self.leases
        )
        # The main thread's claims and each slot's finishes keep a connection each (HeldConnection),
        # from a pool of their own sized for them: held for the worker's life, they would otherwise
        # take the connections of the shared pool its other steps (heartbeats, retries) need, and
        # with more slots than that pool holds, all of them. SQLite: its sessions, from the shared one.
        self._held_db = (
            make_engine(context.db.url.render_as_string(hide_password=False), pool_size=self.concurrency + 1, pre_ping=False)
            if is_postgres(context.db) else context.db
        )
        self._claims = HeldConnection(self._held_db)
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[str, uuid.UUID] = {}  # lease token to job id: one entry per claim
        self._slots: queue.SimpleQueue[ClaimedJob | None] = queue.SimpleQueue()
        self.liveness = Liveness(settings.worker_liveness_seconds)
        self.health: HealthServer | None = None  # listening only while running, if WORKER_METRICS_PORT is set

    def stop(self) -> None:
        """Stop claiming; jobs in flight get the grace period to finish."""
        self._stop.set()
        self._wakeup.set()
        self.upload_sweeper.request_stop()

    def run(self) -> int:
        """Work until stopped (SIGTERM/SIGINT, `stop()`, or drained); returns the exit status."""
        log.info("worker %s: up to %d jobs at once%s", self.owner, self.concurrency, ", until drained" if self.drain else "")
        return_photo_memory_to_the_os()
        one_thread_per_image_step()
        self._start_reporting()
        slots = [threading.Thread(target=self._serve, name=f"job-slot-{n}", daemon=True) for n in range(self.concurrency)]
        self.presence.start()
        for slot in slots:
            slot.start()
        self.leases.start()
        self.upload_sweeper.start()
        try:
            with graceful_stop(self.stop):
                self._work()
                self._wind_down()
        finally:
            self.leases.stop()
            self.presence.stop()
            self._claims.close()
            for _ in slots:
                self._slots.put(None)  # each slot thread ends once its job (if any) is done
            self._leave()
            self.upload_sweeper.stop()
            self._close_held_connections(slots)
            if self.health is not None:
                self.health.stop()
            for gauge in (WORKER_SLOTS, WORKER_SLOTS_IN_USE, WORKER_LAST_CLAIM):
                gauge.remove(self.owner)
        return 0

    def _close_held_connections(self, slots: list[threading.Thread]) -> None:
        """Dispose of the slots' pool once the slots with no job have ended: each gives its
        connection back as it ends, and one given back to a disposed pool would stay open until
        the garbage collector came by. A slot still running past the grace period keeps its
        connection until its job ends; the process exits meanwhile."""
        deadline = time.monotonic() + SLOT_END_WAIT_SECONDS
        for slot in slots:
            slot.join(max(0.0, deadline - time.monotonic()))
        if self._held_db is not self.context.db:
            self._held_db.dispose()

    def _start_reporting(self) -> None:
        """This worker's gauges, and its /healthz and /metrics listener if WORKER_METRICS_PORT is set."""
        settings = self.context.settings
        WORKER_SLOTS.labels(self.owner).set(self.concurrency)
        WORKER_SLOTS_IN_USE.labels(self.owner).set(0)
        if settings.worker_metrics_port:
            self.health = HealthServer(
                port=settings.worker_metrics_port, token=settings.metrics_token, liveness=self.liveness
            ).start()
            log.info("worker %s: /healthz and /metrics on port %d", self.owner, self.health.port)

    def _work(self) -> None:
        failures = 0
        sweep_deadline = time.monotonic() + DRAIN_SWEEP_WAIT_SECONDS
        while not self._stop.is_set():
            free = self._free_slots()
            if self._stop.is_set():
                break
            claimed: list[ClaimedJob] = []
            if free > 0:
                try:
                    claimed = self._claim(free)
                    failures = 0
                    WORKER_LAST_CLAIM.labels(self.owner).set(time.time())
                except DBAPIError:
                    failures += 1
                    backoff = min(MAX_CLAIM_BACKOFF, 0.2 * 2**failures)
                    log.warning("worker %s: database unavailable; trying again in %.1fs", self.owner, backoff, exc_info=failures == 1)
                    self._stop.wait(backoff)
                    continue
            for item in claimed:
                self._start(item)
            self.liveness.beat()  # a round completed: the claim (if any slot was free) answered
            if self.drain and not claimed and not self._running():
                if self.upload_sweeper.swept_once(self.poll_seconds):
                    log.info("worker %s: no job is due; drained", self.owner)
                    return
                if time.monotonic() > sweep_deadline:
                    log.warning("worker %s: drained; its first sweep of abandoned uploads is unfinished", self.owner)
                    return
                continue  # the first sweep is still settling abandoned uploads
            # Sleep until a job ends (a slot frees up), a stop, or the next poll for due jobs.
            self._wakeup.wait(self.poll_seconds)
            self._wakeup.clear()

    def _free_slots(self) -> int:
        """Job slots free to claim into. When only a few are free, wait a moment for more:
        under load jobs end close together, and one claim that fills several slots costs the
        database and this process about what a claim for one does. The moment is short beside
        any real engine call."""
        free = self.concurrency - self._running()
        deadline = time.monotonic() + CLAIM_GATHER_SECONDS
        while 0 < free < self.concurrency / 2 and (left := deadline - time.monotonic()) > 0:
            if self._stop.is_set() or not self._wakeup.wait(left):
                break
            self._wakeup.clear()
            free = self.concurrency - self._running()
        return free

    def _claim(self, limit: int) -> list[ClaimedJob]:
        settings = self.context.settings
        return self._claims.run(lambda db: claim_jobs(
            session=db, owner=self.owner, limit=limit, lease_seconds=settings.job_lease_seconds,
            dead_after_seconds=settings.worker_dead_after_seconds,
        ))

    def _beat(self) -> None:
        settings = self.context.settings
        forget = settings.job_lease_seconds + settings.worker_dead_after_seconds
        with self.context.session() as session:
            worker_beat(session=session, worker_id=self.owner, forget_after_seconds=forget)

    def _leave(self) -> None:
        """Stopped: take this worker's row away (its unfinished jobs went back to the queue)."""
        try:
            self.runner.db(lambda session: worker_gone(session=session, worker_id=self.owner))
        except Exception:  # noqa: BLE001
            log.warning("worker %s: could not remove its heartbeat row; it is forgotten in time", self.owner, exc_info=True)

    def _extend_leases(self, leases: dict[str, uuid.UUID]) -> set[str]:
        lease = self.context.settings.job_lease_seconds
        with self.context.session() as session:
            return extend_leases(session=session, leases=leases, lease_seconds=lease)

    def _running(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def _start(self, claimed: ClaimedJob) -> None:
        with self._lock:
            self._in_flight[claimed.job.lease_token] = claimed.job.id
            WORKER_SLOTS_IN_USE.labels(self.owner).set(len(self._in_flight))
        self._slots.put(claimed)

    def _serve(self) -> None:
        """A job slot: run claimed jobs one after another until told to stop."""
        held = HeldConnection(self._held_db)  # this slot's, for its finishes
        try:
            while (claimed := self._slots.get()) is not None:
                try:
                    self.runner.run(claimed, held=held)
                finally:
                    with self._lock:
                        self._in_flight.pop(claimed.job.lease_token, None)
                        WORKER_SLOTS_IN_USE.labels(self.owner).set(len(self._in_flight))
                    self._wakeup.set()
        finally:
            held.close()

    def _wind_down(self) -> None:
        """Give jobs in flight the grace period, then hand the unfinished ones back to the queue."""
        deadline = time.monotonic() + self.grace_seconds
        if running := self._running():
            log.info("worker %s: waiting up to %.0fs for %d job(s) in flight", self.owner, self.grace_seconds, running)
        while self._running() and (left := deadline - time.monotonic()) > 0:
            self._wakeup.wait(left)
            self._wakeup.clear()
        with self._lock:
            unfinished = dict(self._in_flight)
        for token, job_id in unfinished.items():
            try:
                released = self.runner.db(lambda session: release_job(session=session, job_id=job_id, lease_token=token))  # noqa: B023
                log.info("worker %s: job %s %s", self.owner, job_id, "released to the queue" if released else "already settled")
            except Exception:  # noqa: BLE001
                log.exception("worker %s: could not release job %s; its lease will expire", self.owner, job_id)
