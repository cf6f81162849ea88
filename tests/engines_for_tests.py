"""Image engines for tests and benchmarks: each implements `ImageEngine` for real.

They transform the image they get (so outputs differ from originals), and add the one
behaviour a test needs: waiting like a remote call, failing transiently, failing for good,
or writing down every call so a test can count them across worker processes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from PIL import Image, ImageOps

from luster_app.engines.base import EngineError, EngineRequest

# The marker in pixel (0, 0) of an indexed photo: red and green hold the index, blue is this.
INDEX_MARKER = 77


def indexed_image(index: int, *, size: tuple[int, int] = (24, 16)) -> Image.Image:
    """A small photo whose top-left pixel carries `index` (0-65535), so an engine can tell
    which photo (hence which job) it was asked to edit."""
    image = Image.new("RGB", size, (90, 140, 200))
    image.putpixel((0, 0), (index >> 8, index & 0xFF, INDEX_MARKER))
    return image


def read_index(image: Image.Image) -> int | None:
    red, green, blue = image.convert("RGB").getpixel((0, 0))[:3]
    return (red << 8) | green if blue == INDEX_MARKER else None


class InvertEngine:
    """Inverts the colours: an edit anyone can verify in the output."""

    name = "test-invert"
    model = ""

    def edit(self, request: EngineRequest) -> Image.Image:
        return ImageOps.invert(request.image)  # the worker sends RGB: no conversion copy needed


class NoopEngine(InvertEngine):
    """Returns the photo as it came: the engine call costs nothing, so only the queue is measured."""

    name = "test-noop"

    def edit(self, request: EngineRequest) -> Image.Image:
        return request.image


class WaitingEngine(InvertEngine):
    """Waits like a remote image API before answering."""

    name = "test-waiting"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def edit(self, request: EngineRequest) -> Image.Image:
        time.sleep(self.seconds)
        return super().edit(request)


class FlakyEngine(InvertEngine):
    """Fails with a transient error (like a 503) the first `failures` calls, then works."""

    name = "test-flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self._lock = threading.Lock()

    def edit(self, request: EngineRequest) -> Image.Image:
        with self._lock:
            self.calls += 1
            call = self.calls
        if call <= self.failures:
            raise EngineError("engine_unavailable", "The image service is busy.", transient=True)
        return super().edit(request)


class RefusingEngine(InvertEngine):
    """Refuses every photo for good, like a content-policy block."""

    name = "test-refusing"

    def __init__(self, code: str = "content_policy", message: str = "The image service declined this photo.") -> None:
        self.code = code
        self.message = message
        self.calls = 0

    def edit(self, request: EngineRequest) -> Image.Image:
        self.calls += 1
        raise EngineError(self.code, self.message, transient=False)


class RecordingEngine(InvertEngine):
    """Writes the index of every photo it is asked to edit (see `indexed_image`) to a file of
    its process under `calls_dir` before working; optionally waits like a remote call."""

    name = "test-recording"

    def __init__(self, calls_dir: Path, seconds: float = 0.0) -> None:
        self.calls_dir = Path(calls_dir)
        self.seconds = seconds
        self.calls_dir.mkdir(parents=True, exist_ok=True)

    def edit(self, request: EngineRequest) -> Image.Image:
        line = f"{read_index(request.image)}\n".encode()
        # One O_APPEND write of a short line: atomic, and on disk before the engine "works".
        fd = os.open(self.calls_dir / f"{os.getpid()}.calls", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        if self.seconds:
            time.sleep(self.seconds)
        return super().edit(request)


def recorded_calls(calls_dir: Path) -> list[int]:
    """Every photo index a RecordingEngine was called with, in any process."""
    return [int(line) for path in sorted(Path(calls_dir).glob("*.calls")) for line in path.read_text().split()]


def engine_from_spec(spec: str) -> InvertEngine:
    """An engine from a command-line spec: `invert`, `noop`, `wait:SECONDS`, `record:DIR[:SECONDS]`."""
    kind, _, rest = spec.partition(":")
    if kind == "invert":
        return InvertEngine()
    if kind == "noop":
        return NoopEngine()
    if kind == "wait":
        return WaitingEngine(float(rest))
    if kind == "record":
        calls_dir, _, seconds = rest.partition(":")
        return RecordingEngine(Path(calls_dir), float(seconds or 0))
    raise ValueError(f"unknown engine spec {spec!r}")
