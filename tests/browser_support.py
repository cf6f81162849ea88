"""The whole app served for browser tests, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from luster_app.migrations import ROOT
from tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")
# Headless and off the network: no updates, no sync, no background requests.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
BIN_DIRS = [ROOT / ".tools" / "node_modules" / ".bin", ROOT / ".venv" / "bin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _wait_until_serving(url: str, server: subprocess.Popen, log_path: Path) -> None:
    # Building the frontend takes a while on a busy machine; this waits for readiness, it asserts no speed.
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app exited while starting:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the app did not start:\n{log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def served_app(data: Path, *, with_worker: bool = False, **settings: str) -> Iterator[str]:
    """The whole app (`reflex run --env prod --single-port`) on a free port with its data in `data`,
    and a worker beside it; yields its URL. `settings` are extra environment variables."""
    if not CHROMIUM.exists():
        unavailable("Chromium is not installed at /usr/bin/chromium")
    if not (BIN_DIRS[0] / "bun").exists():
        unavailable("bun is not installed in .tools (run `make setup`)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*map(str, BIN_DIRS), os.environ.get("PATH", "")]),
        "REFLEX_USE_SYSTEM_BUN": "1",
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),  # before the build: the frontend is compiled for this port
        "APP_URL": url,
        "LUSTER_ENV": "test",
        "LUSTER_DATA_DIR": str(data),
        "DATABASE_URL": "",
        "SUPABASE_URL": "",
        "OPENAI_API_KEY": "",
        "STRIPE_SECRET_KEY": "",
        "S3_ENDPOINT": "",
        "S3_BUCKET": "",
        **settings,
    }
    luster = str(BIN_DIRS[1] / "luster")
    subprocess.run([luster, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    processes: list[subprocess.Popen] = []
    log_path = data / "server.log"
    try:
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [str(BIN_DIRS[1] / "reflex"), "run", "--env", "prod", "--single-port", "--backend-port", str(port),
                 "--frontend-port", str(port), "--loglevel", "warning"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            processes.append(server)
            if with_worker:
                processes.append(subprocess.Popen([luster, "worker"], cwd=ROOT, env=env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
        _wait_until_serving(f"{url}/login", server, log_path)
        yield url
    finally:
        for process in reversed(processes):
            _stop(process)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (Debian's) under Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
