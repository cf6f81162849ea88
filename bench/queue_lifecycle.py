"""Lifecycle throughput: jobs a second through create, claim, events, finish and charge with a
no-op engine, against a bare SKIP LOCKED claim-and-complete loop on the same server, same run."""

from __future__ import annotations

import multiprocessing
import statistics
import time

import sqlalchemy as sa

from bench.common import BenchEnv, Section, add_bench_photos, queue_jobs, running_workers, settled_jobs, spread, wait_until
from tests.engines_for_tests import indexed_image
from tests.jobs_support import jobs_by_status

GOAL = 0.50  # with one worker process
CONCURRENCY = 4

BARE_TABLE = "CREATE TABLE bare_queue (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'queued', owner text)"
BARE_CLAIM = sa.text(
    "UPDATE bare_queue SET status = 'processing', owner = :owner WHERE id = ("
    " SELECT id FROM bare_queue WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    ") RETURNING id"
)
BARE_COMPLETE = sa.text("UPDATE bare_queue SET status = 'done' WHERE id = :id")


def _bare_worker(url: str, owner: str, ready: multiprocessing.Barrier) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        ready.wait()
        while (row := conn.execute(BARE_CLAIM, {"owner": owner}).first()) is not None:
            conn.execute(BARE_COMPLETE, {"id": row[0]})
    engine.dispose()


def bare_loop(url: str, jobs: int, processes: int) -> float:
    """Jobs a second of the bare loop: claim one row (SKIP LOCKED), mark it done; nothing else."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bare_queue"))
        conn.execute(sa.text(BARE_TABLE))
        # What a queue table has: an index that finds the next queued row without a scan.
        conn.execute(sa.text("CREATE INDEX bare_queue_queued ON bare_queue (id) WHERE status = 'queued'"))
        conn.execute(sa.text("INSERT INTO bare_queue (status) SELECT 'queued' FROM generate_series(1, :n)"), {"n": jobs})
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(processes + 1)
    workers = [spawn.Process(target=_bare_worker, args=(url, f"bare-{n}", ready)) for n in range(processes)]
    for worker in workers:
        worker.start()
    ready.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        done = conn.execute(sa.text("SELECT count(*) FROM bare_queue WHERE status = 'done'")).scalar_one()
    engine.dispose()
    if done != jobs:
        raise RuntimeError(f"bare loop finished {done} of {jobs} jobs")
    return jobs / elapsed


def lifecycle(env: BenchEnv, url: str, jobs: int, processes: int) -> float:
    """Jobs a second from the first create to the last charge, through real worker processes."""
    settings = env.settings(url)
    context = env.context(settings)
    user_id, photo_ids = add_bench_photos(context, [indexed_image(i) for i in range(jobs)])
    with running_workers(settings, "noop", processes=processes, concurrency=CONCURRENCY, log_dir=env.scratch):
        started = time.perf_counter()
        queue_jobs(context, user_id, photo_ids)
        wait_until(lambda: settled_jobs(context) == jobs, timeout=600)
        elapsed = time.perf_counter() - started
    outcome = jobs_by_status(context)
    context.db.dispose()
    if outcome != {"succeeded": jobs}:
        raise RuntimeError(f"lifecycle run ended with {outcome}")
    return jobs / elapsed


def run(env: BenchEnv) -> Section:
    jobs, repeats = (200, 1) if env.quick else (1000, 3)
    section = Section(
        title="Queue lifecycle throughput",
        header=("worker processes", "full lifecycle (jobs/s)", "bare SKIP LOCKED loop (jobs/s)", "ratio", f"goal ≥ {GOAL:.0%}"),
    )
    for processes in (1, 2):
        bare, full = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            with env.database() as url:
                bare.append(bare_loop(url, jobs, processes))
            with env.database() as url:
                full.append(lifecycle(env, url, jobs, processes))
        ratio = statistics.median(full) / statistics.median(bare)
        section.rows.append((
            str(processes), spread(full), spread(bare), f"{ratio:.0%}", "met" if ratio >= GOAL else "NOT met",
        ))
    section.notes = [
        f"{jobs} jobs per run, no-op engine, {CONCURRENCY} jobs in flight per worker process, PostgreSQL;",
        f"median of {repeats} interleaved runs (range in brackets), ratio of the medians.",
        "Full lifecycle: jobs created in shoot-sized batches of 25 (credit check, events), claimed (one",
        "statement: lease, `claimed` events, photos and next output versions), original fetched and decoded,",
        "output and thumbnail encoded and stored, finished (one statement: status, output assets, event,",
        "ledger row, balance, what the corrections did) — timed from the first create to the last charge.",
        "Bare loop: `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`, then one",
        "`UPDATE` to done, autocommit, one connection per process, pre-filled queue with a partial index.",
        "The goal is set for one worker process.",
        "Where the difference goes: on a 2-CPU machine the worker process (Python, one GIL), PostgreSQL and",
        "the process creating the jobs share the cores, and one photographer's finishes wait for each other.",
        "Each finish charges the credit on the photographer's `credits` row (its trigger lowers `reserved`",
        "there too) and holds that row's lock until its commit is flushed, so the finishes of one",
        "photographer run one at a time through commit latency, as the bare loop's commits do; a batch of",
        "jobs being created holds the same lock until its commit. PostgreSQL's own view (pg_stat_activity",
        "every 3 ms through 2000 jobs, 2026-12-07): on average 0.43 finishes waited for another's lock on",
        "that row and 0.26 for their WAL flush; the worker process was busy about 80% of the time once the",
        "jobs were queued, and half the time while they were being created. The worker's CPU a",
        "job, by thread (2-CPU AMD machine, shared): decode, straightening (Enhance's default), output and",
        "thumbnail encodes about 1.2 ms; two storage writes about 0.7 ms; the finish about 0.7 ms; its share",
        "of a claim (about 2 jobs a claim) about 0.7 ms. The claim and each job slot's finishes run on a",
        "connection their thread keeps in autocommit, with no Session, pool checkout or isolation switch",
        "per statement; the claim's rows become the job and its photo without the ORM's loading; the",
        "finish's statement is compiled once and goes to the driver as it is. OpenCV runs on the calling",
        "thread: its pool's idle threads spun between calls, a tenth of the worker's CPU. The bare loop",
        "spends about 0.3 ms a job in its process. It is bound by commit latency (two commits a job, one",
        "at a time), so its figure moves with the disk and the machine's load more than the lifecycle's",
        "does; compare ratios from one run.",
    ]
    return section

