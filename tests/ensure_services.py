"""Start what the suite needs on this machine before pytest runs: PostgreSQL, Redis, Chromium.

Idempotent and quick when everything is already up; CI runs it through `make test`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(port):
            return True
        time.sleep(0.5)
    return False


def ensure_postgres() -> None:
    if _port_open(5432) or not Path("/etc/postgresql").is_dir():
        return
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    _wait_port(5432)


def ensure_redis() -> None:
    if _port_open(6379) or not shutil.which("redis-server"):
        return
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
        check=False,
    )
    _wait_port(6379)


def ensure_chromium() -> None:
    if Path("/usr/bin/chromium").exists() or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)


if __name__ == "__main__":
    ensure_postgres()
    ensure_redis()
    ensure_chromium()
