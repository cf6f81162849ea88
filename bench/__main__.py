"""`make bench`: run every benchmark and write docs/BENCHMARKS.md.

    python -m bench [NAME ...] [--quick] [--server URL]

Each benchmark is a module here with `run(env) -> Section`; add yours to BENCHMARKS. Naming
some runs only those and prints them; a full run also rewrites docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.common import DEFAULT_SERVER, BenchEnv, Section
from luster_app.config import Settings
from luster_app.migrations import ROOT

BENCHMARKS = [
    "queue_lifecycle", "io_overlap", "worker_memory", "worker_recovery", "image_pipeline", "heic_thumbnail",
    "raw_thumbnail", "brackets", "api_load", "upload_load", "browser_thumbnails", "live_updates",
]
REPORT = ROOT / "docs" / "BENCHMARKS.md"


def _server_url(given: str | None) -> str:
    """The PostgreSQL server: --server, else DATABASE_URL when it is PostgreSQL, else the local one."""
    configured = Settings().database_url
    return given or (configured if configured.startswith("postgresql") else DEFAULT_SERVER)


def _machine(server_url: str) -> str:
    engine = sa.create_engine(server_url)
    with engine.connect() as conn:
        server = conn.execute(sa.text("SHOW server_version")).scalar_one()
    engine.dispose()
    return (
        f"{_cpu_model()} ({platform.machine()}, {os.cpu_count()} CPUs), {_memory_gib():.0f} GiB memory, "
        f"Python {platform.python_version()}, PostgreSQL {server} on the same machine"
    )


def _proc_field(path: str, name: str) -> str | None:
    """The value of `name:` in a /proc file (Linux), or None."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return None


def _cpu_model() -> str:
    return _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    total = _proc_field("/proc/meminfo", "MemTotal")
    return int(total.split()[0]) / 1024 / 1024 if total else 0.0


def _run(name: str, env: BenchEnv) -> Section:
    """One benchmark's section; one that cannot run here says why instead of stopping the others."""
    try:
        return importlib.import_module(f"bench.{name}").run(env)
    except (Exception, pytest.skip.Exception) as exc:  # noqa: BLE001  (reported in the document and on stderr)
        traceback.print_exc()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Section(title=name.replace("_", " ").capitalize(), header=("not measured",), rows=[(reason,)],
                       notes=["This benchmark could not run on this machine in this run."])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for trying a change")
    parser.add_argument("--server", help="PostgreSQL URL whose server gets the scratch databases")
    args = parser.parse_args(argv)
    server = _server_url(args.server)
    sections = []
    with tempfile.TemporaryDirectory(prefix="luster-bench-") as scratch:
        env = BenchEnv(server_url=server, scratch=Path(scratch), quick=args.quick)
        for name in args.names or BENCHMARKS:
            print(f"running {name} …", file=sys.stderr, flush=True)
            section = _run(name, env)
            print(section.markdown(), flush=True)
            sections.append(section)
    if not args.names:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = [
            "# Benchmarks", "",
            f"Written by `make bench` ({'quick' if args.quick else 'full'} run) on {when}: {_machine(server)}.",
            "Each figure is a ratio of two measurements taken in the same run on the same machine.", "",
        ]
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text("\n".join(header + [section.markdown() for section in sections]))
        print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
