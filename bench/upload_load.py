"""Web process under upload load: 20 `complete`s of 12-megapixel HEICs at once, against the same
20 one at a time, in one run: the web process's peak resident memory, the answers, and the time.

The API runs in its own granian process (one worker) on PostgreSQL and local storage, as in
api_load. Each `complete` decodes its photo in full in the web process (this HEIC embeds no
preview) within the process's upload-check limits; the client does what the page's upload queue
does (assets/direct_upload.js): on 503 it waits the Retry-After and asks again.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.api_load import photographer, served
from bench.common import BenchEnv, Section
from bench.photos import IPHONE_SIZE, iphone_heic
from bench.measure import mib, reset_peak, status_kib

PHOTOS = 20
BUSY_TRIES = 6  # the page's upload queue asks this many times in all (BUSY_TRIES in direct_upload.js)
NOISE = 0.1  # allowance on the memory bound for what the allocator and threads add besides the photos
SHOT_AT = re.compile(rb"(\d{4}:\d\d:\d\d \d\d:\d\d:)\d\d")


def _distinct_photos(count: int) -> list[bytes]:
    """`count` copies of the benchmark's HEIC that differ in their EXIF capture time (as a burst of
    shots would), so each is a file of its own; none embeds a preview, so each check decodes it all."""
    photo = iphone_heic()
    return [SHOT_AT.sub(lambda found, n=n: found.group(1) + b"%02d" % n, photo) for n in range(count)]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Outcome:
    """What the client saw of one round of completes, and the server's peak memory during it."""

    final: Counter[int] = field(default_factory=Counter)
    busy: int = 0  # 503s answered and asked again after their Retry-After
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mib: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.final.items() if status >= 500)


async def _complete(http: httpx.AsyncClient, headers: dict[str, str], asset_id: str, outcome: Outcome) -> None:
    for attempt in range(1, BUSY_TRIES + 1):
        response = await http.post(f"/api/uploads/{asset_id}/complete", headers=headers)
        if response.status_code == 503 and attempt < BUSY_TRIES:
            outcome.busy += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", 5)))
            continue
        outcome.final[response.status_code] += 1
        return


async def _round(url: str, headers: dict[str, str], asset_ids: list[str], *, parallel: bool) -> Outcome:
    outcome = Outcome()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=PHOTOS)) as http:
        started = time.perf_counter()
        if parallel:
            await asyncio.gather(*(_complete(http, headers, asset_id, outcome) for asset_id in asset_ids))
        else:
            for asset_id in asset_ids:
                await _complete(http, headers, asset_id, outcome)
        outcome.seconds = time.perf_counter() - started
    return outcome


def _uploaded(url: str, headers: dict[str, str], shoot_id: str, photos: list[bytes], prefix: str) -> list[str]:
    """Photos presigned and sent to storage, not yet completed: their asset ids."""
    asset_ids = []
    for n, data in enumerate(photos):
        presign = httpx.post(f"{url}/api/uploads/presign", headers=headers, json={
            "shoot_id": shoot_id, "filename": f"{prefix}_{n:04d}.HEIC", "content_type": "image/heic", "size": len(data)})
        presign.raise_for_status()
        upload = presign.json()["upload"]
        httpx.put(upload["url"], content=data, headers=upload["headers"], timeout=60).raise_for_status()
        asset_ids.append(presign.json()["asset_id"])
    return asset_ids


def _measured(pid: int, round_: Callable[[], Outcome]) -> Outcome:
    """The round's outcome, with the server's resident high-water mark and CPU time during it."""
    reset_peak(pid=pid)
    cpu = _cpu_seconds(pid)
    outcome = round_()
    outcome.cpu_seconds = _cpu_seconds(pid) - cpu
    outcome.peak_mib = status_kib("VmHWM", pid=pid) / 1024
    return outcome


def run(env: BenchEnv) -> Section:
    photos = _distinct_photos(2 * PHOTOS + 1)  # made before the server starts: nothing else runs while timing
    with env.database() as url:
        settings = env.settings(url)
        headers, _ = photographer(settings)
        with served(settings, env.scratch / "upload-load.log") as server:
            shoot_id = httpx.post(f"{server.url}/api/shoots", headers=headers, json={"name": "Upload load"}).json()["id"]
            [warm] = _uploaded(server.url, headers, shoot_id, photos[-1:], "WARM")
            asyncio.run(_round(server.url, headers, [warm], parallel=False))  # the decoders are loaded before measuring
            one_by_one = _uploaded(server.url, headers, shoot_id, photos[:PHOTOS], "ONE")
            at_once = _uploaded(server.url, headers, shoot_id, photos[PHOTOS:-1], "ALL")
            idle = status_kib("VmRSS", pid=server.pid) / 1024
            sequential = _measured(server.pid, lambda: asyncio.run(_round(server.url, headers, one_by_one, parallel=False)))
            parallel = _measured(server.pid, lambda: asyncio.run(_round(server.url, headers, at_once, parallel=True)))
    slots = settings.upload_check_slots or os.cpu_count() or 1
    megapixels = IPHONE_SIZE[0] * IPHONE_SIZE[1] / 1e6
    at_a_time = min(slots, math.floor(settings.upload_check_megapixels / megapixels))
    one_photo = sequential.peak_mib - idle
    bound = idle + at_a_time * one_photo * (1 + NOISE)
    rows = []
    for label, outcome in (("one at a time", sequential), (f"{PHOTOS} at once", parallel)):
        ok = outcome.final[200]
        others = ", ".join(f"{n}× {status}" for status, n in sorted(outcome.final.items()) if status != 200) or "0"
        goals = ""
        if outcome is parallel:
            no_5xx = outcome.busy == 0 and outcome.server_errors == 0
            goals = (f"RSS {'met' if outcome.peak_mib <= bound else 'NOT met'}; "
                     f"no 5xx {'met' if no_5xx and ok == PHOTOS else 'NOT met'}")
        rows.append((label, f"{ok}/{PHOTOS}", str(outcome.busy), others, f"{outcome.seconds:.1f}",
                     f"{outcome.seconds / sequential.seconds:.2f}×", f"{outcome.cpu_seconds:.1f}", mib(outcome.peak_mib),
                     mib(outcome.peak_mib - idle), goals))
    return Section(
        title=f"Web process under upload load: {PHOTOS} completes of 12-megapixel HEICs",
        header=("completes", "200", "503 retried", "other answers", "all done (s)", "time vs one at a time",
                "server CPU (s)", "peak RSS (MiB)", "above idle (MiB)", f"goal: peak ≤ {bound:.0f} MiB; no 5xx"),
        rows=rows,
        notes=[
            f"One granian worker serving the API app (PostgreSQL, local storage) on this machine; {PHOTOS} HEICs of",
            f"{IPHONE_SIZE[0]}×{IPHONE_SIZE[1]} ({len(photos[0]) / 1e6:.1f} MB each, no embedded preview: each check is a full",
            "decode), presigned and sent to storage first; then their `complete`s, one at a time or all at once.",
            "A 503 is asked again after its Retry-After, as the page's upload queue does; `other answers` are",
            "final answers other than 200. Peak RSS is the server process's resident high-water mark (VmHWM)",
            f"during the round; idle is {idle:.0f} MiB after one warm-up complete. Limits: UPLOAD_CHECK_SLOTS",
            f"{settings.upload_check_slots} ({slots} here), UPLOAD_CHECK_MEGAPIXELS {settings.upload_check_megapixels},"
            f" UPLOAD_CHECK_WAIT_SECONDS {settings.upload_check_wait_seconds:g}, UPLOAD_CHECK_QUEUE_SECONDS"
            f" {settings.upload_check_queue_seconds:g}.",
            f"The bound: at most {at_a_time} of these photos are checked at once (the slots, and the megapixel budget",
            f"over {megapixels:.1f} MP), each costing what one photo's check raised the peak by one at a time",
            f"({one_photo:.0f} MiB): idle + {at_a_time} × {one_photo:.0f} MiB, plus {NOISE:.0%} for the allocator and threads.",
            "Server CPU is the web process's user and system time during the round: what the checks cost, however",
            "busy the machine is with other work (the wall times are not).",
            "A `complete` waits its turn among the checks in the event loop, holding no request thread and no",
            "database connection, for up to UPLOAD_CHECK_QUEUE_SECONDS; a started check waits as long for its",
            "megapixels. Before, each waited up to 3 s for a check slot in a request thread and was then answered",
            "503: 20 at once got 38 503s (each asked again 5 s later) and all 20 were done after 35 s, against 45 s",
            f"one at a time. When `no 5xx` is not met, a photo's turn came after more than {settings.upload_check_queue_seconds:g} s: the {PHOTOS} checks",
            f"cost {parallel.cpu_seconds:.0f} s of CPU, and the web process got {parallel.cpu_seconds / parallel.seconds:.1f} cores of this machine (shared with other",
            f"work) on average, for {at_a_time} checks at a time; with {at_a_time} free cores the last turn would come after about",
            f"{parallel.cpu_seconds / at_a_time:.0f} s. The 503 it got is the overload answer, and the client asked again after its Retry-After.",
        ],
    )
