"""API under load: 50 concurrent clients on POST /api/uploads/presign and POST /api/jobs, against
the app's own GET /api/health in the same run, on SQLite and on PostgreSQL.

The API runs in its own granian process on a free port, as in production; the clients are one
asyncio process with 50 connections. p50/p99 latency and requests a second per endpoint, and
each write endpoint's throughput as a share of /api/health's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from bench.common import BenchEnv, Section, spread
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.migrations import ROOT, upgrade
from luster_app.services.credits import grant_adjustment
from luster_app.services.users import ensure_user

JOBS_GOAL = 0.5
CLIENTS = 50
# Settings the server process gets from its environment (the rest are defaults).
SERVER_SETTINGS = (
    "database_url", "luster_data_dir", "app_url", "luster_env", "log_level", "jobs_per_minute_per_user",
    "upload_check_slots", "upload_check_megapixels", "upload_check_wait_seconds", "upload_check_queue_seconds",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running API server: its base URL, and the process that serves the app's requests."""

    url: str
    pid: int


@contextlib.contextmanager
def served(settings: Settings, log: Path, *, workers: int = 1) -> Iterator[Server]:
    """The API app in a granian process (`workers` worker processes) on a free port."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"app_url": url})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({name.upper(): str(getattr(settings, name)) for name in SERVER_SETTINGS})
    granian = Path(sys.executable).parent / "granian"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(granian), "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--no-access-log", "--log-level", "warning", "luster_app.api:create_api"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        # granian runs the app in a worker process it starts; that is the process under load.
        workers = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        yield Server(url, int(workers[0]) if workers else server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class Load:
    """Latency (seconds) and status of every request, and the wall time they took, 50 clients at once."""

    latencies: list[float]
    statuses: list[int]
    seconds: float

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def unexpected(self, expected: int) -> str:
        """How many answers were not `expected`, and which statuses they were."""
        others = Counter(status for status in self.statuses if status != expected)
        if not others:
            return "0"
        share = sum(others.values()) / len(self.statuses)
        return f"{share:.0%} (" + ", ".join(f"{n}× {status}" for status, n in others.most_common()) + ")"


async def _drive(url: str, numbers: range, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]) -> Load:
    """A request for each of `numbers` from CLIENTS concurrent clients, each taking the next number when
    free; one more first, numbered `numbers.stop`."""
    next_numbers = iter(numbers)
    latencies: list[float] = []
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

        async def client() -> None:
            for number in next_numbers:
                started = time.perf_counter()
                response = await send(http, number)
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status_code)

        await send(http, numbers.stop)  # one request first: connections and caches are warm for all
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return Load(latencies, statuses, time.perf_counter() - started)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 140, 200)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def photographer(settings: Settings) -> tuple[dict[str, str], uuid.UUID]:
    """A signed-in user with plenty of credits; the Authorization header and their id."""
    context = AppContext(settings, db=make_engine(settings.database_url))
    with context.session() as session:
        user = ensure_user(session=session, user_id=uuid.uuid4(), email=f"load-{uuid.uuid4().hex[:8]}@example.com")
        grant_adjustment(session=session, user_id=user.id, delta=1_000_000, reason="load test")
    token = context.auth.issue_access_token(user_id=user.id, email=user.email)
    context.db.dispose()
    return {"Authorization": f"Bearer {token}"}, user.id


def _ready_photo(url: str, headers: dict[str, str], shoot_id: str) -> str:
    """A photo uploaded through presign, the local storage's signed PUT, and complete."""
    presign = httpx.post(f"{url}/api/uploads/presign", headers=headers, json={
        "shoot_id": shoot_id, "filename": "front.jpg", "content_type": "image/jpeg", "size": len(_jpeg())}).json()
    upload = presign["upload"]
    httpx.put(upload["url"], content=_jpeg(), headers=upload["headers"]).raise_for_status()
    httpx.post(f"{url}/api/uploads/{presign['asset_id']}/complete", headers=headers).raise_for_status()
    return presign["asset_id"]


def _endpoints(url: str, headers: dict[str, str]) -> dict[str, tuple[Callable[..., Awaitable[httpx.Response]], int]]:
    shoot_id = httpx.post(f"{url}/api/shoots", headers=headers, json={"name": "Load test listing"}).json()["id"]
    photo_id = _ready_photo(url, headers, shoot_id)
    return {
        "GET /api/health": (lambda http, n: http.get("/api/health"), 200),
        "POST /api/uploads/presign": (lambda http, n: http.post("/api/uploads/presign", headers=headers, json={
            "shoot_id": shoot_id, "filename": f"IMG_{n:06d}.jpg", "content_type": "image/jpeg", "size": 2_000_000}), 200),
        "POST /api/jobs": (lambda http, n: http.post("/api/jobs", headers=headers, json={
            "asset_id": photo_id, "preset": "enhance", "params": {}}), 201),
    }


def _measure(env: BenchEnv, database: str, settings: Settings, requests: int, rounds: int) -> list[tuple[str, ...]]:
    upgrade(settings.database_url)
    headers, _ = photographer(settings)
    with served(settings, env.scratch / f"api-{database}.log") as server:
        endpoints = _endpoints(server.url, headers)
        runs: dict[str, list[Load]] = {name: [] for name in endpoints}
        per_round = requests // rounds
        for round_number in range(rounds):  # interleaved, so every endpoint sees the same machine load
            # Numbers no round repeats: each presign names a new file (a repeated name is a duplicate, 409).
            numbers = range(round_number * (per_round + 1), round_number * (per_round + 1) + per_round)
            for name, (send, _) in endpoints.items():
                runs[name].append(asyncio.run(_drive(server.url, numbers, send)))
    health = statistics.median(load.per_second for load in runs["GET /api/health"])
    rows = []
    for name, loads in runs.items():
        rates = [load.per_second for load in loads]
        every = Load([t for load in loads for t in load.latencies], [s for load in loads for s in load.statuses],
                     sum(load.seconds for load in loads))
        ratio = statistics.median(rates) / health
        goal = ""
        if database == "PostgreSQL" and name == "POST /api/jobs":
            goal = "met" if ratio >= JOBS_GOAL else "NOT met (see below)"
        rows.append((database, name, str(len(every.latencies)), f"{every.percentile(0.5) * 1000:.0f}",
                     f"{every.percentile(0.99) * 1000:.0f}", spread(rates), f"{ratio:.2f}",
                     every.unexpected(endpoints[name][1]), goal))
    return rows


def run(env: BenchEnv) -> Section:
    requests, rounds = (500, 1) if env.quick else (3000, 3)
    rows = []
    sqlite_settings = env.settings(f"sqlite:///{env.scratch / f'load-{uuid.uuid4().hex[:6]}.db'}")
    rows += _measure(env, "SQLite", sqlite_settings, requests, rounds)
    with env.database() as url:
        rows += _measure(env, "PostgreSQL", env.settings(url), requests, rounds)
    return Section(
        title="API under load",
        header=("database", "endpoint", "requests", "p50 (ms)", "p99 (ms)", "requests/s", "vs /api/health", "errors",
                f"goal ≥ {JOBS_GOAL}"),
        rows=rows,
        notes=[
            f"{CLIENTS} concurrent clients (one asyncio process, keep-alive connections) against one granian worker",
            "serving the API app, on the same machine. Each presign creates a pending photo (a new file name each",
            "time, so none is a duplicate); each job is queued against available credits (no worker runs, so",
            "every job stays reserved and each create counts the reservations). `errors` counts answers other than",
            "the endpoint's success status (200, or 201 for a job); latency and rate include them. The endpoints take",
            "turns, three rounds of 1000 requests each (health, presign, create, then again), so each sees the same",
            "machine load: requests/s is the median of the rounds (range in brackets), the ratio that of the medians,",
            "p50 and p99 over every request. The health rate is bound by the clients and swings most between rounds.",
            "Where a job create's time went (py-spy of the granian worker, samples holding the GIL, 1000 creates at 50",
            "clients on PostgreSQL), before this round: the rate limiter (advisory lock, prune, count, insert), the",
            "prompt's schema rebuilt per create, five thread-pool hops, the balance and a count of reserved jobs, auth,",
            "the photo check and the job insert through the ORM: 18 round trips and 12-17 ms of the worker's CPU, where",
            "/api/health is 1.5-2 ms. The first fixes (one-statement rate limit, labels read once, the balance and count",
            "in one statement, columns not ORM rows, async context and session dependencies) made it 15 round trips.",
            "Then, as the count of reserved jobs and the rate limiter's count of hits in its window both grew with",
            "the rows they count (3000 in this run: no worker runs, and one photographer makes every request), and",
            "the count ran while holding the photographer's credits lock, which every create of theirs waits for:",
            "`credits.reserved` is now a column the database keeps (triggers on `jobs`, migration 0021, so no code",
            "path can forget it; `luster audit` compares it with the jobs), read by the lock's own statement; a rate",
            "limit is a token bucket of one row (one UPSERT, no advisory lock, the same cost at any traffic); the job",
            "and its `created` event are one statement, built once (the ORM's multi-row insert was compiled again on",
            "every create: 12% of the worker's GIL time); the create's reads are table statements (no ORM compile",
            "step). A create is 11 round trips (pool ping, user, commit; ping, rate limit, prompt, commit; lock with",
            "the available credits, photos, insert, commit), four of them under the credits lock (six before). The",
            "sign-in read ends before the endpoint runs, and a sync endpoint ends its open read on its own thread:",
            "FastAPI ran a sync endpoint's user lookup, the endpoint and the check of its response on three",
            "thread-pool threads one after another, and a request that kept its connection between them could,",
            "under load, leave every thread waiting for a connection held by a request waiting for a thread",
            "(tests/test_api_connections.py). The response is now checked on the event loop, as for an async",
            "endpoint: two hops, not three. Side by side, 1500 creates each, alternating (2026-12-07 06:40 UTC):",
            "118-126 creates/s before the hop went, 111-137 after, within the noise; a health check's share of",
            "the API process's CPU fell from 1.0-1.2 ms to 0.7-1.0 ms, raising the reference rate. Ending the read",
            "itself, side by side: 96-116 creates/s keeping it, 101-103 ending it, within the noise. The create's",
            "own share of the worker's GIL",
            "samples went from 35% to 21%; FastAPI's dependency solving (23%: the bearer, session and user",
            "dependencies, the Idempotency-Key header, the thread-pool hops), routing, the",
            "middlewares and the response model are the rest, and are the same for any authenticated endpoint.",
            "Side by side with the code before (both apps' own migrations, alternating runs of 1500 creates on a",
            "quiet machine, 2026-12-07 03:20 UTC): 44-53 creates/s before, 60-67 after; ratio medians 0.38 -> 0.44",
            "(single runs 0.31-0.50). Served by 5 granian workers, as `reflex run --env prod` serves with Redis",
            "configured on 2 CPUs: 65-72 creates/s against 210-217 health checks/s (0.30-0.34): /api/health gains",
            "more from the extra processes than a create, which waits on the photographer's credits lock.",
            "When the goal is not met: a create still costs the worker several times a health check's CPU (the",
            "framework's share alone is more than a health check), all 50 clients are one photographer whose creates",
            "run one at a time under their credits lock, and on this 2-CPU machine the clients, the server and",
            "PostgreSQL share the cores. Measured by process (1500 creates, /proc CPU times): a create costs the API",
            "process 7-10 ms of CPU against 1.2-1.8 ms for a health check, in one process with one GIL, so about",
            "100-130 creates/s is its ceiling, while the health checks are bound by the clients' own CPU (3-4 ms a",
            "request in httpx). Measured again (2026-12-07 15:30 UTC, 1500 requests each, alternating): a create 7.4-8.0",
            "ms of the API process's CPU at 108-113 creates/s (86% of a core), a health check 1.2-1.3 ms at 245-351/s,",
            "the clients 2.8-4.0 ms a health check (a whole core); single runs of 3000 health checks on one server",
            "measured 308 to 618/s, hence the rounds. py-spy (GIL samples): the create's own code is 26% of the",
            "worker's time (rate limit 7%, credits lock 5%, prompt 4%, photo check 3%), FastAPI's dependency solving",
            "21% (the thread-pool hop 9%), the rest routing, the five middlewares, the body and the response model:",
            "meeting the goal needs about 30% less of the API process's CPU a create, more than any one step holds.",
            "Since then the jobs endpoints find the user on their own thread, in their own transaction",
            "(`UncheckedCaller` in api/deps.py; the bearer header is still checked on the event loop, the token on",
            "the thread): one thread-pool hop, one pool checkout and ping, and one commit fewer, so a create is 9",
            "round trips (ping, user, rate limit, prompt, commit; lock, photos, insert, commit) and one hop.",
            "Side by side (2026-12-08 01:03 UTC, 1500 creates each, alternating): 7.95-8.77 ms of the API",
            "process's CPU a create before, 6.37-6.57 after; 105-108 creates/s before, 119-127 after. The ratio",
            "moved less, as the health rate swings with the clients more than creates gain.",
            "What would meet the goal: about half the API process's CPU a create, where a health check's share",
            "alone is 1 ms, or creates spread over processes (which on 2 CPUs gives health as much): an async",
            "driver (no thread hop at all) and the create's remaining statements as one call.",
        ],
    )
