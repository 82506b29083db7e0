"""Progress with ETA for the command line, as a callback the optimiser calls.

On a terminal, a tqdm bar redrawn in place; anywhere else (a log file, a pipe, a CI job),
plain lines: the first update at once, then at most one line every `PLAIN_LINE_EVERY_S`
seconds, and the last one. Both read `description: 40%| 4/10 [00:12<00:18]`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

PLAIN_LINE_EVERY_S = 30.0  # plain-line mode: at most one line this often (besides the first and the last)


class PlainLines:
    """The part of tqdm's interface the bars here use, writing whole lines instead of redrawing."""

    def __init__(self, total: float, description: str, unit: str, stream: TextIO) -> None:
        self.total, self.n, self.description, self.unit, self.stream = total, 0.0, description, unit, stream
        self.started = time.monotonic()
        self.last_line_at: float | None = None

    def update(self, amount: float) -> None:
        self.n += amount
        now = time.monotonic()
        if self.last_line_at is None or now - self.last_line_at >= PLAIN_LINE_EVERY_S or self.n >= self.total:
            self._print_progress(now)

    def _print_progress(self, now: float) -> None:
        self.last_line_at = now
        elapsed_s = now - self.started
        share = self.n / self.total if self.total else 1.0
        remaining = tqdm.format_interval(elapsed_s * (1 - share) / share) if share > 0 else "?"
        print(f"{self.description}: {100 * share:3.0f}%| {round(self.n, 2):g}/{self.total:g} {self.unit} "
              f"[{tqdm.format_interval(elapsed_s)}<{remaining}]", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def make_bar(total: float, description: str, unit: str, stream: TextIO | None = None):
    """A tqdm bar on a terminal, `PlainLines` elsewhere."""
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(total=total, desc=description, unit=unit, file=stream, dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} " + unit
                               + " [{elapsed}<{remaining}]")
    return PlainLines(total, description, unit, stream)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yields `update(done, total)`; the bar shows the share done, the elapsed and the remaining time.

    The bar appears at the first update, so a file that fails before optimising draws none.
    """
    bars: list = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(make_bar(total, description, "steps"))
        bar = bars[0]
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def print_line(line: str, stream: TextIO) -> None:
    """Print a whole line without tearing a terminal bar that shows meanwhile."""
    tqdm.write(line, file=stream)


class BatchProgress:
    """One bar over a batch of files: whole files as they finish, and, where the files run in
    this process, the share of the file at work (from the optimiser's callback).

    The bar appears at the first progress or the first file done, so a batch whose files all
    fail before optimising (a bad file) draws none. Lines printed while it shows go through
    `print_line`, so that they do not tear a terminal bar.
    """

    def __init__(self, total_files: int, description: str = "protect", enabled: bool = True) -> None:
        self.total_files, self.description, self.enabled = total_files, description, enabled
        self.bar = None
        self.files_done = 0

    def file_progress(self, done: int, total: int) -> None:
        """The optimiser's callback for the file at work in this process."""
        self._move_to(self.files_done + (done / total if total else 0.0))

    def file_done(self, succeeded: bool = True) -> None:
        self.files_done += 1
        if succeeded or self.bar is not None:
            self._move_to(self.files_done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _move_to(self, position: float) -> None:
        if not self.enabled or not self.total_files:
            return
        if self.bar is None:
            self.bar = make_bar(self.total_files, self.description, "files")
        if position > self.bar.n:
            self.bar.update(position - self.bar.n)
