"""A private PostgreSQL server that a test may really stop and start again.

The shared server at TEST_DATABASE_URL must never be restarted (other test runs on the machine
use it), so each test that restarts PostgreSQL gets its own: a fresh `initdb` cluster on a free
local port, with one migrated database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from luster_app.migrations import upgrade
from tests.fixtures_storage import free_port

SERVER_USER = "postgres"  # PostgreSQL refuses to run as root


def _server_bindir() -> Path | None:
    """The directory with initdb and pg_ctl: pg_config's, else the newest Debian install."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(result.stdout.strip())
    installed = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(installed, key=lambda p: int(v) if (v := Path(p).parent.name).isdigit() else 0, reverse=True)
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args


@dataclass
class RestartablePostgres:
    """A PostgreSQL cluster in `root`, listening on 127.0.0.1:`port`, that a test can stop and
    start again (its data stays)."""

    bindir: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/luster"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        self._ctl("start", "-l", str(self.root / "server.log"))

    def stop(self, mode: str = "fast") -> None:
        """Shut down; `fast` ends every open connection, as a restart in production does."""
        self._ctl("stop", "-m", mode)

    def restart(self, down_seconds: float = 0) -> None:
        """Stop, stay down `down_seconds` (clients see refused connections), start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",  # not /var/run/postgresql: the shared server's
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "120", *args)

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            _as_server_user([str(self.bindir / tool), *args]), capture_output=True, text=True, timeout=180, check=False
        )
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}\n{self.log()[-4000:]}"
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}): {output}")


@pytest.fixture
def restartable_pg() -> Iterator[RestartablePostgres]:
    """A private PostgreSQL server for this test, with a migrated database at `url`."""
    from tests.conftest import unavailable

    bindir = _server_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            unavailable(f"no '{SERVER_USER}' system user to run a private PostgreSQL server as")
    # Not pytest's tmp_path: the server user must be able to reach its directory.
    root = Path(tempfile.mkdtemp(prefix="luster-pg-"))
    if os.geteuid() == 0:
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
    server = RestartablePostgres(bindir=bindir, root=root, port=free_port())
    try:
        server.initdb()
        server.start()
        admin = sa.create_engine(server.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE luster"))
        admin.dispose()
        upgrade(server.url)
        yield server
    finally:
        try:
            server.stop(mode="immediate")
        except Exception:  # noqa: BLE001  (never started, or already stopped)
            pass
        shutil.rmtree(root, ignore_errors=True)
