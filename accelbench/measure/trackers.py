"""Trackers: a wall-clock timer, a peak-memory sampler and a busy-machine gauge, apart from the scenarios."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np

MEMORY_POLL_S = 0.005
# A point is measured on a busy machine when other processes took more than this share of the CPU time
# the cores this process may run on offered during the point (cores x wall time): a quarter of the machine,
# e.g. half a core of a 2-core machine, is enough to shift a speed figure by more than its interval.
BUSY_SHARE = 0.25
# /proc/stat fields that count as a CPU doing work (guest time is already inside user and nice)
BUSY_CPU_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


class Timer:
    """Collects wall-clock durations: ``with timer.track(): ...``."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @contextmanager
    def track(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times.append(time.perf_counter() - start)

    @property
    def total(self) -> float:
        return float(sum(self.times))

    def percentiles_ms(self, qs=(50, 90, 99)) -> dict[str, float]:
        arr = np.asarray(self.times) * 1e3
        out = {f"latency_ms_p{q}": float(np.percentile(arr, q)) for q in qs}
        out["latency_ms_mean"] = float(arr.mean())
        return out


STATUS_FILE = "/proc/self/status"
CLEAR_REFS_FILE = "/proc/self/clear_refs"


def _status_kb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (``VmHWM``, ``VmRSS``), or None where there is none."""
    try:
        with open(STATUS_FILE) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process to its current RSS; False where not allowed."""
    try:
        with open(CLEAR_REFS_FILE, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """This process's peak resident memory over a block: ``peak_mb`` (and ``start_mb``, the RSS at the start).

    On Linux the kernel keeps the peak itself (``VmHWM``, reset at the start by writing 5 to
    ``/proc/self/clear_refs``): exact, and no thread competes with the measured code for the interpreter
    lock or a core (a 5-ms polling thread slowed PyTorch generation by ~3% on 2 cores). Elsewhere, or
    where the reset is refused, a thread samples the RSS every ``interval_s`` (``source`` says which).
    Blocks may nest: resetting the counter first hands the peak so far to the blocks still open.
    """

    _open: ClassVar[list[PeakMemory]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, interval_s: float = MEMORY_POLL_S, use_kernel_peak: bool = True) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval_s = interval_s
        self.use_kernel_peak = use_kernel_peak
        self.source = "poll"
        self.start_mb = self.peak_mb = self._rss()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss(self) -> float:
        return self._proc.memory_info().rss / 2**20

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, self._rss())

    @classmethod
    def _hand_peak(cls, hwm_kb: float | None) -> None:
        """Give the kernel's peak so far to every open block that reads it (before a reset or at an exit)."""
        if hwm_kb is not None:
            for block in cls._open:
                if block.source == "VmHWM":
                    block.peak_mb = max(block.peak_mb, hwm_kb / 1024)

    def __enter__(self) -> PeakMemory:
        with PeakMemory._lock:
            hwm_kb = _status_kb("VmHWM") if self.use_kernel_peak else None
            if hwm_kb is not None:  # the kernel keeps a peak here: hand it to open blocks, then reset it
                PeakMemory._hand_peak(hwm_kb)
                if _reset_hwm():
                    self.source = "VmHWM"
            self.start_mb = self.peak_mb = self._rss()
            PeakMemory._open.append(self)
        if self.source == "poll":
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        with PeakMemory._lock:
            PeakMemory._hand_peak(_status_kb("VmHWM"))
            PeakMemory._open.remove(self)
        self.peak_mb = max(self.peak_mb, self._rss())


def usable_cpus() -> list[int]:
    """The CPU numbers this process may run on (its affinity), or all of them where that is unknown."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


class OtherCpu:
    """CPU time that OTHER processes took while blocks ran: ``with gauge.track(): ...``, summed over blocks.

    Over each block, the busy time of the CPUs this process may use (system-wide counters, as ``top``
    reads them; hypervisor steal included) minus this process's own CPU time (all its threads, and its
    children that ended) is what others took. ``share`` relates it to what those CPUs offered (cores x wall
    time); ``busy`` is True above ``BUSY_SHARE``. ``load_1m`` is the highest 1-minute load average seen at
    the end of a block (it counts this process's own threads too, so it is recorded, not judged).
    Limits: a CPU quota of a container (cgroup) is not seen, and counters tick every 10 ms, so a block
    should last a few tenths of a second at least.
    """

    def __init__(self, cpus: list[int] | None = None, threshold: float = BUSY_SHARE) -> None:
        import psutil

        self._psutil, self._proc = psutil, psutil.Process()
        self.cpus = list(cpus) if cpus is not None else usable_cpus()
        self.threshold = threshold
        self.other_s = 0.0
        self.wall_s = 0.0
        self.blocks: list[float] = []  # each block's share
        self.load_1m = math.nan

    def _system_busy_s(self) -> float:
        per_cpu = self._psutil.cpu_times(percpu=True)
        chosen = [per_cpu[i] for i in self.cpus if i < len(per_cpu)]
        if len(chosen) != len(self.cpus):  # offline CPUs shift the numbering: count every CPU
            chosen = per_cpu
        return float(sum(getattr(t, f, 0.0) for t in chosen for f in BUSY_CPU_FIELDS))

    def _own_s(self) -> float:
        t = self._proc.cpu_times()
        return float(
            t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        )

    def _load_1m(self) -> float:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return math.nan

    @contextmanager
    def track(self) -> Iterator[None]:
        system0, own0, start = self._system_busy_s(), self._own_s(), time.perf_counter()
        try:
            yield
        finally:
            wall = time.perf_counter() - start
            other = max(0.0, (self._system_busy_s() - system0) - (self._own_s() - own0))
            self.other_s += other
            self.wall_s += wall
            self.blocks.append(other / (len(self.cpus) * wall) if wall > 0 else 0.0)
            load = self._load_1m()
            if not math.isnan(load):
                self.load_1m = load if math.isnan(self.load_1m) else max(self.load_1m, load)

    @property
    def share(self) -> float:
        """Others' CPU time over what the usable CPUs offered during the blocks (0..1); NaN before any block."""
        capacity = len(self.cpus) * self.wall_s
        return min(1.0, self.other_s / capacity) if capacity > 0 else math.nan

    @property
    def busy(self) -> bool:
        return bool(self.share > self.threshold)

    def fields(self) -> dict:
        """The record fields: busy_other_cpu_share, busy_rounds (blocks above the threshold), busy_load_1m,
        busy_cpus, busy_threshold and busy."""
        share = self.share
        return {
            "busy_other_cpu_share": None if math.isnan(share) else round(share, 3),
            "busy_rounds": sum(b > self.threshold for b in self.blocks),
            "busy_load_1m": None if math.isnan(self.load_1m) else round(self.load_1m, 2),
            "busy_cpus": len(self.cpus),
            "busy_threshold": self.threshold,
            "busy": self.busy,
        }
