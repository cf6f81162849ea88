"""Bounds on decoded photos held at once in one process: the worker's jobs and the web
process's upload checks both decode untrusted photos, and memory must not grow with how many
arrive together."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from luster_app.config import Settings

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_ALLOCATION = 1 << 20
# Decodes that may wait for a slot without a timeout (ZIPs streaming), per slot: a few request
# threads at most (of the server's 40) wait that way.
PATIENT_PER_SLOT = 4


def return_photo_memory_to_the_os() -> bool:
    """Have glibc give every allocation over 1 MiB its own mapping, returned to the OS when freed.

    By default glibc raises that threshold after the first large free and then serves photos
    from per-thread heaps, where freed photos stay resident; with many job threads the process
    then grows with concurrency whatever the pixel budget says. Process-wide; False where the
    C library is not glibc (nothing to tune there).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION))
    except (OSError, AttributeError):
        return False


class BudgetExhausted(Exception):
    """The photo's share of the budget did not come free within the wait."""


class PixelBudget:
    """A counting semaphore in megapixels: how much decoded photo one process may hold at once.

    A holder keeps its photo's share from decode to encode, so memory stays bounded however many
    photos are in flight. A photo larger than the whole budget waits until it can run alone.
    `peak` is the most ever held at once: the budget's own account of what it allowed.
    """

    def __init__(self, megapixels: float) -> None:
        self.total = float(megapixels)
        self.peak = 0.0
        self._free = self.total
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, megapixels: float, *, wait: float | None = None) -> Iterator[None]:
        """Hold `megapixels` for the block; with `wait`, BudgetExhausted if not free in time."""
        share = min(max(megapixels, 0.0), self.total)
        with self._changed:
            if not self._changed.wait_for(lambda: self._free >= share, timeout=wait):
                raise BudgetExhausted(f"{share:.1f} megapixels not free within {wait}s")
            self._free -= share
            self.peak = max(self.peak, self.total - self._free)
        try:
            yield
        finally:
            with self._changed:
                self._free += share
                self._changed.notify_all()


@dataclass(frozen=True)
class CheckLimits:
    """The web process's bounds on upload checks: checks at once (each holds the file's bytes),
    and megapixels decoded at once. A request thread waits up to `wait` for a check slot; a
    `complete` first waits up to `queue_wait` for its turn among the slots (`turn`), in the
    event loop, so photos queued behind others hold no thread and never stall other requests;
    a check holding a slot waits up to `queue_wait` for its pixels (only slot holders wait for
    pixels, so that wait holds at most `slots` threads). Not free in time: BudgetExhausted, which
    the API answers 503 with Retry-After, so hostile parallel completes meet a refusal, not an OOM."""

    slots: threading.BoundedSemaphore
    patient: threading.BoundedSemaphore
    turns: anyio.Semaphore
    budget: PixelBudget
    wait: float
    queue_wait: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckLimits:
        """The limits of this process, which checks uploads in its request threads: without
        `return_photo_memory_to_the_os` each thread's heap would keep the photos it freed."""
        return_photo_memory_to_the_os()
        slots = settings.upload_check_slots or os.cpu_count() or 1
        return cls(
            slots=threading.BoundedSemaphore(slots),
            patient=threading.BoundedSemaphore(slots * PATIENT_PER_SLOT),
            turns=anyio.Semaphore(slots),
            budget=PixelBudget(settings.upload_check_megapixels),
            wait=settings.upload_check_wait_seconds,
            queue_wait=settings.upload_check_queue_seconds,
        )

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait, first come first served and holding no thread, until fewer than `slots` checks run."""
        try:
            with anyio.fail_after(self.queue_wait):
                await self.turns.acquire()
        except TimeoutError:
            raise BudgetExhausted(f"no upload check turn within {self.queue_wait}s") from None
        try:
            yield
        finally:
            self.turns.release()

    @contextmanager
    def slot(self, *, patient: bool = False) -> Iterator[None]:
        """A decode slot. `patient`: wait as long as it takes, for a response already streaming
        (a ZIP), which a refusal would leave broken."""
        if not self.slots.acquire(timeout=None if patient else self.wait):
            raise BudgetExhausted("no upload check slot free")
        try:
            yield
        finally:
            self.slots.release()

    def pixels(self, megapixels: float, *, patient: bool = False) -> AbstractContextManager[None]:
        return self.budget.hold(megapixels, wait=None if patient else self.queue_wait)

    @contextmanager
    def decoding(self, megapixels: float, *, patient: bool = False) -> Iterator[None]:
        """A slot and `megapixels` for one decode in a request thread that is not an upload check
        (a download, a public photo, the compare view's copy of a HEIC or RAW): memory stays within
        the same bounds however many arrive together. A patient decode (a ZIP already streaming)
        waits without a timeout while fewer than `patient` others do, so waiting never ties up
        every request thread; past that it waits as long as any other."""
        patient = patient and self.patient.acquire(blocking=False)
        try:
            with self.slot(patient=patient), self.pixels(megapixels, patient=patient):
                yield
        finally:
            if patient:
                self.patient.release()
