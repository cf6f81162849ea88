"""Recovery after a worker dies: two workers share a batch, one is SIGKILLed mid-run; how soon
its jobs run again and how long the batch takes, against the same run without a kill."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from bench.common import BenchEnv, Section, add_bench_photos, queue_jobs, running_workers, settled_jobs, wait_until
from luster_app.models import CreditLedger, JobEvent
from tests.engines_for_tests import indexed_image
from tests.jobs_support import jobs_by_status

JOBS = 40
PROCESSES = 2
CONCURRENCY = 2
ENGINE_SECONDS = 2.0  # each engine call waits like a remote image API
KILL_AFTER = 6.0
GOAL_SECONDS = 30.0


def _run(env: BenchEnv, *, kill: bool) -> dict[str, float]:
    with env.database() as url:
        settings = env.settings(url)  # production lease, heartbeat and dead-worker limit
        context = env.context(settings)
        user_id, photo_ids = add_bench_photos(context, [indexed_image(i) for i in range(JOBS)])
        figures: dict[str, float] = {}
        spec = f"wait:{ENGINE_SECONDS}"
        with running_workers(settings, spec, processes=PROCESSES, concurrency=CONCURRENCY, log_dir=env.scratch) as workers:
            started = time.monotonic()
            queue_jobs(context, user_id, photo_ids)
            if kill:
                time.sleep(KILL_AFTER)
                workers[0].signal(signal.SIGKILL)
                killed, killed_at = time.monotonic(), datetime.now(UTC)
            wait_until(lambda: settled_jobs(context) == JOBS, timeout=900, poll=0.1)
            done = time.monotonic()
        with context.session() as session:
            takeovers = list(session.execute(select(JobEvent.at).where(JobEvent.type == "lease_expired")).scalars())
            charges = session.execute(
                select(func.count(), func.count(func.distinct(CreditLedger.ref))).where(CreditLedger.kind == "job")
            ).one()
        outcome = jobs_by_status(context)
        context.db.dispose()
    if outcome != {"succeeded": JOBS} or tuple(charges) != (JOBS, JOBS):
        raise RuntimeError(f"run ended with {outcome} and {charges[0]} charges for {charges[1]} jobs")
    figures["total"] = done - started
    if kill:
        if not takeovers:
            raise RuntimeError("the killed worker held no job")
        figures["kill_to_done"] = done - killed
        figures["takeover"] = max((at - killed_at).total_seconds() for at in takeovers)
        figures["taken_over"] = len(takeovers)
    return figures


def run(env: BenchEnv) -> Section:
    base = _run(env, kill=False)
    killed = _run(env, kill=True)
    delay, met = killed["takeover"], killed["takeover"] <= GOAL_SECONDS
    section = Section(
        title="Recovery after a worker dies",
        header=("run", "whole batch (s)", "kill → all done (s)", "kill → its jobs running again (s)", f"goal ≤ {GOAL_SECONDS:.0f} s"),
        rows=[
            ("no kill", f"{base['total']:.1f}", "–", "–", ""),
            (
                f"worker 1 of {PROCESSES} SIGKILLed {KILL_AFTER:.0f} s in ({killed['taken_over']:.0f} of its jobs in flight)",
                f"{killed['total']:.1f}", f"{killed['kill_to_done']:.1f}", f"{delay:.1f}", "met" if met else "NOT met",
            ),
        ],
    )
    section.notes = [
        f"{JOBS} jobs on PostgreSQL and local storage, {PROCESSES} worker processes with {CONCURRENCY} jobs in flight each,",
        f"an engine that waits {ENGINE_SECONDS:.0f} s per call; default settings (`JOB_LEASE_SECONDS` 300,",
        "`WORKER_HEARTBEAT_SECONDS` 5, `WORKER_DEAD_AFTER_SECONDS` 20). Both runs charged each job once.",
        "Each worker records that it is alive every few seconds (the `workers` table, from a thread of",
        "its own, so a slow engine call does not stop it); a claim takes over the jobs of a worker not",
        "seen for `WORKER_DEAD_AFTER_SECONDS`, besides those whose lease ran out. The takeover column",
        "is from the kill to the last of its jobs claimed again: up to the dead limit plus one poll.",
        "After the kill the survivor runs the rest alone, at half the batch's speed.",
    ]
    if not met:
        section.notes.append("Not met: lower `WORKER_DEAD_AFTER_SECONDS` (and the heartbeat with it).")
    return section
