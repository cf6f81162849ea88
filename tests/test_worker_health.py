"""The worker's liveness: /healthz answers 200 while the claim loop goes round and 503 once it has
been stuck for WORKER_LIVENESS_SECONDS (here: a database that accepts connections and never
answers), so Railway's healthcheck or a monitor can restart a hung worker."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.migrations import ROOT
from tests.jobs_support import WorkerProcess, worker_context, worker_settings
from tests.metrics_support import free_port
from worker.worker import Worker

RAILWAY_WORKER = json.loads((ROOT / "railway.worker.json").read_text())
HEALTH_PATH = RAILWAY_WORKER["deploy"]["healthcheckPath"]


class SilentDatabase:
    """A TCP server that accepts connections and never says a word: a client waits forever."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://luster@127.0.0.1:{self._listener.getsockname()[1]}/luster"

    def _accept(self) -> None:
        while True:
            try:
                self._held.append(self._listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        """Refuse new connections and drop the held ones: every waiting client gets an error."""
        self._listener.close()
        for conn in self._held:
            conn.close()


def _wait_for(url: str, expected_status: int, deadline_seconds: float = 90) -> httpx.Response:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == expected_status:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered {expected_status}"
        time.sleep(0.1)


@pytest.fixture
def running() -> Iterator[Callable[[AppContext], Worker]]:
    """Start a worker in a thread of this process; stopped (and waited for) at the end."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(context: AppContext) -> Worker:
        worker = Worker(context, concurrency=1)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(60)


def test_the_railway_healthcheck_path_is_the_workers_health_route() -> None:
    assert HEALTH_PATH == "/healthz"


def test_a_worker_going_round_is_healthy(settings: Settings, sqlite_url: str, running) -> None:
    context = worker_context(settings, sqlite_url, worker_metrics_port=free_port(), worker_liveness_seconds=30)
    try:
        running(context)
        body = _wait_for(f"http://127.0.0.1:{context.settings.worker_metrics_port}{HEALTH_PATH}", 200).json()
        assert body["status"] == "ok" and body["limit_seconds"] == 30
        assert httpx.get(f"http://127.0.0.1:{context.settings.worker_metrics_port}/nothing-here").status_code == 404
    finally:
        context.db.dispose()


def test_a_worker_whose_claim_loop_hangs_turns_unhealthy(settings: Settings, running) -> None:
    silent = SilentDatabase()
    context = AppContext.for_worker(
        worker_settings(settings, silent.url, worker_metrics_port=free_port(), worker_liveness_seconds=2)
    )
    try:
        worker = running(context)
        body = _wait_for(f"http://127.0.0.1:{context.settings.worker_metrics_port}{HEALTH_PATH}", 503).json()
        assert body["status"] == "stuck"
        assert body["seconds_since_last_claim_round"] >= 2
        assert not worker.liveness.healthy()
    finally:
        silent.close()  # the hung claim gets its error, and the worker can stop
        context.db.dispose()


def test_luster_worker_serves_its_health_on_the_configured_port(settings: Settings, sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = WorkerProcess(worker_settings(settings, sqlite_url, worker_metrics_port=port), None, concurrency=1, log=tmp_path / "worker.log")
    try:
        assert _wait_for(f"http://127.0.0.1:{port}{HEALTH_PATH}", 200).json()["status"] == "ok"
        assert "luster_worker_slots" in _wait_for(f"http://127.0.0.1:{port}/metrics", 200).text
        process.signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.stop()
