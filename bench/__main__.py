"""`make bench`: run every benchmark and write docs/BENCHMARKS.md.

    python -m bench [NAME ...] [--quick] [--server URL]

Each benchmark is a module here with `run(env) -> Section`; add yours to BENCHMARKS. Naming
some runs only those and prints them; a full run also rewrites docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.common import DEFAULT_SERVER, BenchEnv
from luster_app.config import Settings
from luster_app.migrations import ROOT

BENCHMARKS = ["queue_lifecycle", "io_overlap", "worker_memory"]
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
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {server} on the same machine"
    )


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
            section = importlib.import_module(f"bench.{name}").run(env)
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
