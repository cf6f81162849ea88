"""Side-by-side measurement: wall time and peak memory of two ways of doing one step, in one run.

Peak memory is the process's resident high-water mark (Linux `VmHWM`, reset through
`/proc/self/clear_refs`) above what was resident when the step began: it sees Pillow's and
NumPy's C allocations, which `tracemalloc` does not.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def status_kib(field: str, *, pid: int | str = "self") -> int:
    """A size field (`VmRSS`, `VmHWM`) of a process's /proc status, in KiB; 0 if absent."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def reset_peak(*, pid: int | str = "self") -> None:
    """Restart the process's resident high-water mark (VmHWM) from its current resident size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def can_measure_memory() -> bool:
    try:
        reset_peak()
    except OSError:
        return False
    return status_kib("VmHWM") > 0


def peak_memory(step: Callable[[], Any]) -> float:
    """MiB the process's resident size rose to, above its size when `step` began."""
    gc.collect()
    reset_peak()
    before = status_kib("VmRSS")
    result = step()
    peak = status_kib("VmHWM")
    del result
    return max(0, peak - before) / 1024


@dataclass(frozen=True)
class Pair:
    """Best-of-`repeat` seconds and peak MiB of our step and of the bare one it is compared with."""

    ours_s: float
    bare_s: float
    ours_mib: float | None
    bare_mib: float | None

    @property
    def ratio(self) -> float:
        return self.ours_s / self.bare_s if self.bare_s > 0 else float("inf")


def _timed(step: Callable[[], Any], setup: Callable[[], Any] | None) -> float:
    argument = setup() if setup else None
    started = time.perf_counter()
    result = step(argument) if setup else step()
    elapsed = time.perf_counter() - started
    del result, argument
    return elapsed


def compare(
    ours: Callable[..., Any],
    bare: Callable[..., Any],
    *,
    repeat: int,
    setup: Callable[[], Any] | None = None,
    memory: bool = True,
) -> Pair:
    """Run both steps `repeat` times, alternating so drift hits both alike; then one memory run each.

    With `setup`, each run gets a fresh argument from it (made outside the timing), for steps
    that change their input in place.
    """
    ours_times, bare_times = [], []
    for run in range(repeat):
        # Alternate which goes first, so neither always runs on a warmer or colder process.
        for step, times in ((ours, ours_times), (bare, bare_times))[:: 1 if run % 2 == 0 else -1]:
            times.append(_timed(step, setup))

    def peak(step: Callable[..., Any]) -> float | None:
        if not memory:
            return None
        argument = setup() if setup else None
        return peak_memory(lambda: step(argument) if setup else step())

    return Pair(min(ours_times), min(bare_times), peak(ours), peak(bare))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 1 else f"{seconds * 1000:.0f}"


def mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"
