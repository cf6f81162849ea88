"""Scale-out: with REDIS_URL, a user's session moves between two app replicas and keeps its state.

Two Reflex processes, each built from its own copy of a one-counter app that uses Luster's own
rxconfig (so REDIS_URL reaches Reflex exactly as in production), serve on two ports against the
Redis server on this machine. A client speaks Reflex's websocket protocol as the browser's
state.js does: Socket.IO on /_event with the tab's token in the query string, `event` messages
out, state deltas back. The tab counts on replica A, moves to replica B with the same token,
and B continues from A's count; a load balancer moving a user between replicas does the same.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from luster_app.migrations import ROOT
from tests.conftest import unavailable

APP_SOURCE = Path(__file__).parent / "scaleout_app"
REDIS_URL = "redis://127.0.0.1:6379"
ROOT_STATE = "reflex___state____state"
COUNTER_STATE = f"{ROOT_STATE}.counter_app___counter_app____counter_state"
# Where a replica records which of them holds a tab's token (Reflex's RedisTokenManager).
SOCKET_RECORD_KEY = "token_manager_socket_record_{token}"
START_TIMEOUT_S = 420  # compile + frontend build of a tiny app on a busy two-core machine
REPLY_TIMEOUT_S = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require_redis_and_bun() -> dict[str, str]:
    """The environment the replicas need; unavailable() when Redis or bun is missing."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            unavailable("Redis is not reachable at 127.0.0.1:6379 (tests/ensure_services.py starts it)")
    path = os.pathsep.join([str(ROOT / ".tools" / "node_modules" / ".bin"), os.environ.get("PATH", "")])
    if shutil.which("bun", path=path) is None:
        unavailable("bun is not installed (make setup installs it into .tools/)")
    return {**os.environ, "PATH": path, "REFLEX_USE_SYSTEM_BUN": "1", "PYTHONPATH": str(ROOT),
            "LUSTER_ROOT": str(ROOT), "LUSTER_ENV": "test", "REDIS_URL": REDIS_URL,
            # One backend worker per replica keeps two replicas light on a small machine.
            "GRANIAN_WORKERS": "1"}


class Replica:
    """One app process: `reflex run --env prod --single-port` on its own port, from its own build."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        shutil.copytree(APP_SOURCE, workdir)
        self.port = _free_port()
        self.log_path = workdir / "replica.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
             "--backend-port", str(self.port), "--frontend-port", str(self.port), "--loglevel", "info"],
            cwd=workdir,
            env={**env, "PORT": str(self.port), "APP_URL": f"http://127.0.0.1:{self.port}",
                 "LUSTER_DATA_DIR": str(workdir / "data")},
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_until_serving(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"replica on port {self.port} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"replica on port {self.port} did not start in {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Tab:
    """A browser tab's websocket session with one replica, keyed by the tab's client token."""

    def __init__(self, port: int, token: str) -> None:
        import socketio  # python-socketio's client, over websocket-client

        self.token = token
        self.updates: queue.Queue[dict] = queue.Queue()
        self.new_tokens: list[str] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("event", self.updates.put, namespace="/_event")
        # A replica that finds the token held by a connected tab (on any replica) takes this one
        # for a duplicate and gives it a new token, with a fresh state.
        self.client.on("new_token", self.new_tokens.append, namespace="/_event")
        self.client.connect(f"http://127.0.0.1:{port}?token={token}", socketio_path="/_event",
                            namespaces=["/_event"], transports=["websocket"], wait_timeout=REPLY_TIMEOUT_S)

    def send(self, handler: str) -> dict:
        """Send one event as state.js does and return the counter's state from the replica's reply."""
        self.client.emit("event", {"name": handler, "payload": {}, "router_data": {"pathname": "/", "asPath": "/"}},
                         namespace="/_event")
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            delta = self.updates.get(timeout=left).get("delta") or {}
            if COUNTER_STATE in delta:
                # Sent on connecting, so before any reply.
                assert not self.new_tokens, "the replica took this tab for a duplicate: another still held its token"
                return {key.removesuffix("_rx_state_"): value for key, value in delta[COUNTER_STATE].items()}
        raise AssertionError(f"no counter update for {handler}")

    def load(self) -> dict:
        return self.send(f"{ROOT_STATE}.hydrate")

    def increment(self) -> dict:
        return self.send(f"{COUNTER_STATE}.increment")

    def close(self) -> None:
        """Disconnect, and wait until the replica has let go of the token, as it does once it has
        handled the disconnect (asynchronously: a busy replica can take a while). A tab that
        reconnected sooner, to any replica, would be taken for a duplicate."""
        import redis

        self.client.disconnect()
        record = SOCKET_RECORD_KEY.format(token=self.token)
        with redis.Redis.from_url(REDIS_URL) as store:
            deadline = time.monotonic() + REPLY_TIMEOUT_S
            while store.exists(record):
                assert time.monotonic() < deadline, f"the replica still holds the tab's token {REPLY_TIMEOUT_S}s after it left"
                time.sleep(0.02)


@contextmanager
def tab(replica: Replica, token: str) -> Iterator[Tab]:
    opened = Tab(replica.port, token)
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.slow
def test_a_session_moves_between_two_replicas_sharing_redis(tmp_path: Path) -> None:
    env = _require_redis_and_bun()
    replicas = [Replica(tmp_path / "replica-a", env), Replica(tmp_path / "replica-b", env)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        for replica in replicas:
            replica.wait_until_serving(deadline)
        a, b = replicas
        token = str(uuid.uuid4())

        with tab(a, token) as on_a:
            assert on_a.load()["count"] == 0
            on_a.increment()
            assert on_a.increment() == {"count": 2, "served_by": str(a.port)}

        # The same tab, now routed to the other replica: the state it built on A is there.
        with tab(b, token) as on_b:
            assert on_b.load() == {"count": 2, "served_by": str(a.port)}
            assert on_b.increment() == {"count": 3, "served_by": str(b.port)}

        with tab(a, token) as back_on_a:
            assert back_on_a.load() == {"count": 3, "served_by": str(b.port)}

        # Another tab (another token) has its own session.
        with tab(b, str(uuid.uuid4())) as stranger:
            assert stranger.load()["count"] == 0
    finally:
        for replica in replicas:
            replica.stop()
