"""Shared by the benchmarks: how much of the CPU other processes use, and waiting for quiet.

Benchmarks here run on 2 shared cores; another process taking one of them stalls every
parallel op (threads wait for each other), several times beyond its own share.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def cpu_mark() -> tuple[float, float, float]:
    """(machine busy CPU s from /proc/stat, this process's CPU s, wall s); busy NaN off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = float("nan")
    return busy, time.process_time(), time.perf_counter()


def others_share(start: tuple[float, float, float]) -> float:
    """Share of the machine's CPU time other processes used since ``start`` (0 = quiet)."""
    busy, own, wall = (b - a for a, b in zip(start, cpu_mark(), strict=True))
    return max(0.0, busy - own) / ((os.cpu_count() or 1) * wall)


class Quiet:
    """Waits (within a total budget) until other processes leave the CPU alone."""

    def __init__(self, limit: float, budget_s: float) -> None:
        self.limit, self.budget_s, self.waited_s = limit, budget_s, 0.0

    def wait(self) -> None:
        while self.waited_s < self.budget_s:
            mark = cpu_mark()
            time.sleep(0.3)
            self.waited_s += 0.3
            if others_share(mark) <= self.limit:  # 0 where /proc/stat is missing
                return


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median wall seconds of each of ``fns``, called in turn ``repeat`` times.

    Taking turns spreads slow spells of a shared machine over every contender alike.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, own in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            own.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]
