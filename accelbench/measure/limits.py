"""Time limits: stop a variant that runs past its share of time, so one slow variant never stalls a sweep."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class VariantTimeout(Exception):
    """Raised inside a variant's work when its time limit passes."""


@contextmanager
def time_limit(seconds: float | None, what: str = "variant") -> Iterator[None]:
    """Raise ``VariantTimeout`` in the block once ``seconds`` have passed (``None``: no limit).

    Uses a real-time interval timer (SIGALRM), which interrupts Python code between bytecodes, so a long
    native call (one batch, one compiled kernel) finishes before the stop. Off the main thread, where signals
    cannot be delivered, the block runs unbounded and the caller checks the elapsed time afterwards.
    """
    if seconds is None or not math.isfinite(seconds):
        yield
        return
    if seconds <= 0:
        raise VariantTimeout(f"{what}: no time left")
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _stop(signum, frame):
        raise VariantTimeout(f"{what}: time limit of {seconds:.0f} s reached")

    previous = signal.signal(signal.SIGALRM, _stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
