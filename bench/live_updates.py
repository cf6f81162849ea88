"""Browser: live updates of a shoot page of 200 photos while 20 jobs move, against the same page
with nothing in flight, in the same run: the server's CPU and the websocket bytes per minute of
polling, and what one poll tick sends when nothing changed and when one card changed.

The whole app runs as in production (`reflex run --env prod`, SQLite, local storage); the photos
are uploaded and the jobs queued and canceled through the API; a real worker process (the
production Worker with a test engine that waits before inverting the photo) moves the jobs.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.browser_thumbnails import PHOTOS, shoot_of_photos, signed_in_token
from bench.common import BenchEnv, Section, wait_until
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.models import Job, JobStatus
from luster_app.pages.shoot import POLL_SECONDS
from luster_app.services.credits import grant_adjustment
from tests.jobs_support import WorkerProcess

IN_FLIGHT = 20
WORKER_CONCURRENCY = 2
ALL_CARDS_SHOWN = "(expected) => document.querySelectorAll('.photo-card').length >= expected"
# The changed tick is the frames that arrived in the second before its card showed (ticks are 2 s apart).
TICK_SPAN_SECONDS = 1.0
SETTLE_SECONDS = 10


class Frames:
    """Every websocket frame the page receives: when, and how many bytes."""

    def __init__(self, page: Any) -> None:
        self.received: list[tuple[float, int]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload: str | bytes) -> None:
        self.received.append((time.monotonic(), len(payload.encode() if isinstance(payload, str) else payload)))

    def bytes_between(self, start: float, end: float) -> int:
        return sum(size for at, size in self.received if start <= at <= end)


def _app_cpu_seconds(port: int) -> float:
    """User and system CPU seconds of `reflex run` on `port` and every process of its session."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        stats[entry.name] = (int(fields[3]), int(fields[11]) + int(fields[12]), cmdline)  # session, utime + stime
    marker = f"--backend-port\0{port}\0".encode()
    sessions = {session for session, _, cmdline in stats.values() if b"reflex" in cmdline and marker in cmdline}
    if not sessions:
        raise RuntimeError(f"no reflex process serves port {port}")
    return sum(ticks for session, ticks, _ in stats.values() if session in sessions) / os.sysconf("SC_CLK_TCK")


def _open(browser: Any, url: str, token: str, shoot_id: str) -> tuple[Any, Frames, int]:
    """A fresh tab on the shoot, once its 200 cards show; its frames, and the bytes its opening took."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "luster_session", "value": token, "url": url}])
    page = context.new_page()
    frames = Frames(page)
    page.goto(f"{url}/shoots/{shoot_id}")
    page.wait_for_function(ALL_CARDS_SHOWN, arg=PHOTOS, timeout=300_000)
    page.wait_for_load_state("networkidle")
    opening = frames.bytes_between(0, time.monotonic())
    page.wait_for_timeout(SETTLE_SECONDS * 1000)  # the opening's own work (thumbnails served, on_load events) done
    return page, frames, opening


def _per_minute(page: Any, frames: Frames, port: int, seconds: float) -> tuple[float, float]:
    """The app's CPU seconds and the page's received websocket KiB, per minute, over `seconds`."""
    cpu, started = _app_cpu_seconds(port), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    cpu, ended = _app_cpu_seconds(port) - cpu, time.monotonic()
    minutes = (ended - started) / 60
    return cpu / minutes, frames.bytes_between(started, ended) / 1024 / minutes


def _finished(context: AppContext) -> int:
    with context.session() as session:
        return session.execute(select(func.count()).select_from(Job).where(Job.status.in_(JobStatus.FINAL))).scalar_one()


def run(env: BenchEnv) -> Section:
    from tests.browser_support import chromium, served_app  # arrives with the web app

    data = env.scratch / f"live-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    window = 20 if env.quick else 60
    # Slow enough that jobs are still queued and processing when the window ends.
    engine_seconds = round(1.3 * window * WORKER_CONCURRENCY / IN_FLIGHT, 1)
    with served_app(data, JOBS_PER_MINUTE_PER_USER="1000000") as url:
        port = int(url.rsplit(":", 1)[1])
        settings = Settings(_env_file=None, luster_env="test", luster_data_dir=data, app_url=url)
        context = AppContext(settings)
        token = signed_in_token(context)
        headers = {"Authorization": f"Bearer {token}"}
        shoot_id, _ = shoot_of_photos(url, headers)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            assets = http.get(f"/api/shoots/{shoot_id}/assets").json()
            with chromium() as browser:
                idle_page, idle_frames, opening = _open(browser, url, token, shoot_id)
                idle_cpu, idle_kib = _per_minute(idle_page, idle_frames, port, window)
                idle_page.context.close()

                # One more job than IN_FLIGHT: one is canceled to make the one-card change.
                queued = assets[: IN_FLIGHT + 1]
                with context.session() as session:
                    user_id = uuid.UUID(http.get("/api/me").json()["id"])
                    grant_adjustment(session=session, user_id=user_id, delta=len(queued), reason="bench credits")
                jobs = http.post("/api/jobs/batch", json={"asset_ids": [a["id"] for a in queued], "preset": "enhance"})
                jobs.raise_for_status()
                page, frames, _ = _open(browser, url, token, shoot_id)
                # Jobs in flight, none moving (no worker yet): every tick finds nothing changed.
                quiet_cpu, quiet_kib = _per_minute(page, frames, port, window)
                quiet_tick = quiet_kib * 1024 / (60 / POLL_SECONDS)

                canceled = jobs.json()["jobs"][-1]
                http.post(f"/api/jobs/{canceled['id']}/cancel").raise_for_status()
                filename = next(a["filename"] for a in queued if a["id"] == canceled["asset_id"])
                page.wait_for_selector(f'.photo-card[data-filename="{filename}"] .photo-status[data-status="canceled"]')
                shown = time.monotonic()
                changed_tick = frames.bytes_between(shown - TICK_SPAN_SECONDS, shown)

                worker = WorkerProcess(settings, f"wait:{engine_seconds}", concurrency=WORKER_CONCURRENCY,
                                       log=data / "worker.log")
                try:
                    wait_until(lambda: "ready" in worker.output(), timeout=120)
                    finished = _finished(context)
                    busy_cpu, busy_kib = _per_minute(page, frames, port, window)
                    finished = _finished(context) - finished
                finally:
                    worker.signal()
                    worker.wait()
                page.context.close()
        context.db.dispose()
    return Section(
        title="Browser: live updates of a shoot of 200 photos",
        header=("measured", f"{IN_FLIGHT} jobs moving", f"{IN_FLIGHT} jobs in flight, none moving",
                "nothing in flight", "goal"),
        rows=[
            ("app server CPU (s per minute)", f"{busy_cpu:.2f} ({busy_cpu / idle_cpu:.1f}×)",
             f"{quiet_cpu:.2f} ({quiet_cpu / idle_cpu:.1f}×)", f"{idle_cpu:.2f} (1.0×)", "reported"),
            ("websocket to the page (KiB per minute)", f"{busy_kib:.1f}", f"{quiet_kib:.1f}", f"{idle_kib:.1f}", "reported"),
            ("one poll tick (bytes)", f"one card changed: {changed_tick:.0f} ({changed_tick / opening:.1%} of the"
             f" page's opening, {opening / 1024:.0f} KiB)", f"nothing changed: {quiet_tick:.0f}", "no polling",
             # Under a byte: the websocket's own pings (a byte each, every 25 s) are no state sent.
             "nothing changed: 0, " + ("met" if quiet_tick < 1 else "NOT met") + "; one card: under 2% of the opening, "
             + ("met" if changed_tick < 0.02 * opening else "NOT met")),
        ],
        notes=[
            f"One tab (Debian's Chromium, headless, Playwright) on `/shoots/{{id}}` of {PHOTOS} photos, {window} s each,",
            "scaled to a minute. App server CPU: user + system time of `reflex run --env prod` and every process",
            "of its session (the backend), from /proc before and after; websocket: the bytes of every frame the",
            f"page received. In flight: {IN_FLIGHT} jobs queued through the API, then a real worker process",
            f"({WORKER_CONCURRENCY} at a time, a test engine that waits {engine_seconds} s a photo) moved them;"
            f" {finished} finished in the window,",
            "each a card changing twice (processing, then succeeded with its output's thumbnail). None moving:",
            "the same jobs queued before the worker started (the page polls, nothing changes). Nothing in flight:",
            f"the same page before any job was queued (no polling). Ticks are every {POLL_SECONDS} s; nothing changed: the",
            "none-moving window's bytes per tick; one card changed: one queued job canceled through the API, and",
            "the frames of the tick that showed its card as canceled. Page opening: what the websocket brought",
            "from navigation to the 200 cards shown (the whole state, every card).",
        ],
    )
