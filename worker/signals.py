"""Graceful stop: the first SIGTERM or SIGINT asks the worker to stop; a second one ends it at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def graceful_stop(request_stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, a stop signal calls `request_stop` and restores the default action,
    so a second signal kills the process without waiting for anything."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; whoever runs us there owns them
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        log.info("%s: finishing jobs in flight (send it again to stop at once)", signal.Signals(signum).name)
        request_stop()

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
