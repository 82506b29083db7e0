"""A progress bar with ETA for the command line (tqdm), as a callback the optimiser calls."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(description: str) -> Iterator:
    """Yields `update(done, total)`; the bar shows the share done, the rate and the time left."""
    bar = tqdm(total=1, desc=description, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}]")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
