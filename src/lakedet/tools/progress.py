"""Progress shown by long commands: a bar on a terminal, a line now and then otherwise."""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar", "print_progress"]


class ProgressBar:
    """A one-line progress bar on stderr with the rate and the time left: call it with (done, total)."""

    def __init__(self, unit: str = "images", width: int = 30, stream=None):
        self.unit, self.width, self.stream = unit, width, stream
        self._start = self._first = None
        self._last_done = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._start is None or done < self._last_done:
            self._start, self._first = now, done  # a new run (or resumed: rate from what this run did)
        self._last_done = done
        elapsed = now - self._start
        rate = (done - self._first) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        filled = int(self.width * done / max(total, 1))
        eta_text = "--:--" if eta != eta else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        stream = self.stream or sys.stderr
        end = "\n" if done >= total else ""
        print(f"\r  [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {self.unit}, "
              f"{rate:.1f} {self.unit}/s, ETA {eta_text}", end=end, file=stream, flush=True)
        if done >= total:
            self._start = None


_bar = ProgressBar()


def print_progress(done: int, total: int) -> None:
    """The shared progress bar (``ProgressBar``) on stderr."""
    _bar(done, total)

