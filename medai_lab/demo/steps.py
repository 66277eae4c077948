"""Numbered progress lines: ``[3/7] ... (12 s)``, one per demo step, flushed at once."""

from __future__ import annotations

import time


class Steps:
    """Prints ``[i/total] text (elapsed since start)`` lines."""

    def __init__(self, total: int, start: float | None = None) -> None:
        self.total, self.done = total, 0
        self.start = time.perf_counter() if start is None else start

    def line(self, text: str) -> None:
        """The next step."""
        self.done += 1
        elapsed = time.perf_counter() - self.start
        print(f"[{self.done}/{self.total}] {text}  ({elapsed:.0f} s)", flush=True)

    def sub(self, text: str) -> None:
        """A detail of the current step."""
        print(f"      {text}", flush=True)
