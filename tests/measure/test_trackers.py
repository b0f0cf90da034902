"""The busy-machine gauge: other processes' CPU time is seen beside a measurement, and flags its points."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from accelbench.measure.scenarios import realtime
from accelbench.measure.settings import BenchmarkSettings
from accelbench.measure.trackers import BUSY_SHARE, OtherCpu, usable_cpus
from accelbench.runtimes.base import Predictor

SPIN = "import time\nprint('ready', flush=True)\nend = time.time() + 20\nwhile time.time() < end:\n    pass\n"


class IdlePredictor(Predictor):
    """Sleeps 20 ms per request: the measurement itself takes next to no CPU."""

    def __init__(self):
        super().__init__(tokenizer=None, family="bert")

    def classify(self, texts, padding="dynamic", max_length=128):
        time.sleep(0.02)
        return np.zeros(len(texts), dtype=int)


def _measure() -> dict:
    """A short real-time point: 2 rounds of 0.5 s."""
    s = BenchmarkSettings(min_time_s=1.0, repeats=2, warmup=1, max_requests=1000)
    return realtime(IdlePredictor(), "classification", ["a text"] * 10, s)


def _start_hogs() -> list[subprocess.Popen]:
    """One spinning process per CPU this process may use, each running before this returns."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
        for _ in usable_cpus()
    ]
    for hog in hogs:
        assert hog.stdout.readline().strip() == "ready"
    return hogs


def test_a_quiet_machine_does_not_flag_its_point():
    # a machine shared with other work may be busy for a moment: a quiet try among three is enough
    rows = [_measure() for _ in range(3)]
    quiet = [row for row in rows if not row["busy"]]
    if not quiet:
        # the gauge says others took a core; the kernel's run queue says whether that is true (this test's
        # own process sleeps, so it adds next to nothing to the load average)
        load = os.getloadavg()[0]
        if load > BUSY_SHARE * len(usable_cpus()):
            pytest.skip(f"the machine is busy with other work (load {load:.2f}): no quiet point to measure")
    assert quiet, [row["busy_other_cpu_share"] for row in rows]
    assert quiet[0]["busy_other_cpu_share"] <= BUSY_SHARE and quiet[0]["busy_rounds"] == 0


def test_a_cpu_hog_beside_a_measurement_flags_its_point():
    hogs = _start_hogs()
    try:
        row = _measure()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert row["busy"] is True
    assert row["busy_other_cpu_share"] > 0.6  # the hogs had every core; the measurement slept
    assert row["busy_rounds"] == 2 and row["busy_cpus"] == len(usable_cpus())
    assert row["busy_load_1m"] is None or row["busy_load_1m"] >= 0


class ScriptedCpu(OtherCpu):
    """OtherCpu reading scripted counters: (system busy s, own s) before and after each block."""

    def __init__(self, readings, cpus=(0, 1)):
        super().__init__(cpus=list(cpus))
        self.readings = list(readings)

    def _system_busy_s(self) -> float:
        return self.readings[0][0]

    def _own_s(self) -> float:
        return self.readings.pop(0)[1]


@pytest.mark.parametrize(
    ("after", "busy"),
    [
        ((1.30, 0.20), True),  # others took 0.3 s of the 2 cores x ~0.1 s offered: all of it
        ((1.02, 0.21), False),  # 0.01 s of others' time: quiet
        ((1.05, 0.30), False),  # this process's own threads do not count, and never go below zero
    ],
)
def test_share_is_others_time_over_cores_times_wall(after, busy):
    gauge = ScriptedCpu([(1.0, 0.2), after])
    with gauge.track():
        time.sleep(0.1)
    expected = max(0.0, (after[0] - 1.0) - (after[1] - 0.2)) / (2 * gauge.wall_s)
    assert gauge.share == pytest.approx(min(1.0, expected))
    fields = gauge.fields()
    assert fields["busy"] is busy and fields["busy_rounds"] == int(busy) and fields["busy_cpus"] == 2
    assert set(fields) == {
        "busy_other_cpu_share",
        "busy_rounds",
        "busy_load_1m",
        "busy_cpus",
        "busy_threshold",
        "busy",
    }
    assert fields["busy_threshold"] == BUSY_SHARE


def test_no_block_means_no_share():
    gauge = OtherCpu()
    assert np.isnan(gauge.share) and gauge.busy is False
    assert gauge.fields()["busy_other_cpu_share"] is None
