"""A real worker process for tests and benchmarks: the production Worker with a test engine.

    python tests/worker_process.py ENGINE_SPEC [--concurrency N] [--drain]

Settings (DATABASE_URL, LUSTER_DATA_DIR, JOB_LEASE_SECONDS, ...) come from the environment,
exactly as for `luster worker`; only the image engine differs (see engines_for_tests).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.logging import configure_logging
from tests.engines_for_tests import engine_from_spec
from worker.worker import Worker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings)
    context = AppContext.for_worker(settings, image_engine=engine_from_spec(args.engine))
    worker = Worker(context, concurrency=args.concurrency, drain=args.drain)
    print("worker ready", flush=True)  # past imports and setup: benchmarks start their clocks now
    status = worker.run()
    print(f"peak_rss_kib={_peak_rss_kib()}", flush=True)  # for the memory benchmark
    return status


def _peak_rss_kib() -> int:
    """This process's resident-set high-water mark. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss across exec, so it would report the parent's peak if that was higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
