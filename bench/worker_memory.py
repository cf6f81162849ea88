"""Memory: peak resident set of one worker process running 24-megapixel JPEGs, at growing
concurrency; it should stay under 1.5 GB and flat (the pixel budget bounds decoded photos)."""

from __future__ import annotations

import re

from bench.common import BenchEnv, Section, add_bench_photos, queue_jobs
from bench.photos import CAMERA_SIZE, camera_jpeg
from tests.jobs_support import WorkerProcess, jobs_by_status

GOAL_MIB = 1536
ENGINE_SECONDS = 0.5


def peak_rss_mib(env: BenchEnv, photo: bytes, *, jobs: int, concurrency: int) -> float:
    """Peak RSS of a worker that drains `jobs` jobs on `photo` with `concurrency` in flight."""
    with env.database() as url:
        settings = env.settings(url)
        context = env.context(settings)
        if jobs:
            user_id, photo_ids = add_bench_photos(context, [photo] * jobs)
            queue_jobs(context, user_id, photo_ids, per_batch=jobs)
        log = env.scratch / f"memory-{concurrency}-{jobs}.log"
        worker = WorkerProcess(settings, f"wait:{ENGINE_SECONDS}", concurrency=concurrency, drain=True, log=log)
        if worker.wait(timeout=1800) != 0:
            raise RuntimeError(f"worker failed:\n{worker.output()[-2000:]}")
        outcome = jobs_by_status(context)
        context.db.dispose()
    if jobs and outcome != {"succeeded": jobs}:
        raise RuntimeError(f"memory run ended with {outcome}")
    return int(re.findall(r"peak_rss_kib=(\d+)", worker.output())[-1]) / 1024


def run(env: BenchEnv) -> Section:
    photo = camera_jpeg()
    levels = (4, 16) if env.quick else (4, 16, 32)
    idle = peak_rss_mib(env, photo, jobs=0, concurrency=16)
    section = Section(
        title="Worker memory on 24-megapixel JPEGs",
        header=("concurrency", "jobs", "peak RSS (MiB)", f"goal < {GOAL_MIB} MiB"),
        rows=[("idle", "0", f"{idle:.0f}", "")],
    )
    for concurrency in levels:
        jobs = 2 * concurrency
        peak = peak_rss_mib(env, photo, jobs=jobs, concurrency=concurrency)
        section.rows.append((str(concurrency), str(jobs), f"{peak:.0f}", "met" if peak < GOAL_MIB else "NOT met"))
    section.notes = [
        f"One worker process, {CAMERA_SIZE[0]}×{CAMERA_SIZE[1]} camera JPEG originals ({len(photo) / 1e6:.1f} MB), an engine that waits",
        f"{ENGINE_SECONDS} s and returns a full-resolution edit; default settings (WORKER_IMAGE_BUDGET_MEGAPIXELS,",
        "WORKER_CPU_SLOTS). Peak RSS is the worker process's own high-water mark (VmHWM).",
    ]
    return section
