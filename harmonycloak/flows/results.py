"""What a protect flow returns, and the files it writes beside each output: the JSON report and
the picture (written atomically, whatever the kind of music)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmonycloak.io.atomic import atomic_output

ProgressCallback = Callable[[int, int], None]  # (units done, units in total)


@dataclass
class ProtectionResult:
    """One protected file: where it came from and went, the report, and the report's files."""

    input_path: Path
    output_path: Path
    report: dict
    report_path: Path | None = None
    picture_path: Path | None = None


def report_paths(output_path: Path) -> tuple[Path, Path]:
    """(<output stem>.report.json, <output stem>.report.png), beside the output."""
    return (output_path.with_name(f"{output_path.stem}.report.json"),
            output_path.with_name(f"{output_path.stem}.report.png"))


def write_json_report(report: dict, output_path: Path) -> Path:
    """Write <output stem>.report.json beside the output, atomically; returns its path."""
    json_path = report_paths(output_path)[0]
    with atomic_output(json_path) as temporary:
        temporary.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return json_path


def figure_with_caption(rows: int, figsize: tuple[float, float], caption_lines: int):
    """A matplotlib figure of `rows` panels sharing their time axis, above a strip that holds a
    caption of about `caption_lines` lines; returns (figure, panel axes, write_caption(text))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=figsize, constrained_layout=True)
    grid = figure.add_gridspec(rows + 1, 1, height_ratios=[1.0] * rows + [0.12 * caption_lines])
    axes = [figure.add_subplot(grid[0])]
    axes += [figure.add_subplot(grid[row], sharex=axes[0]) for row in range(1, rows)]
    for axis in axes[:-1]:
        axis.tick_params(labelbottom=False)
    strip = figure.add_subplot(grid[rows])
    strip.axis("off")

    def write_caption(text: str) -> None:
        label = strip.text(0.0, 1.0, text, ha="left", va="top", fontsize=9, wrap=True, transform=strip.transAxes)
        label.set_in_layout(False)  # wrapped to the figure's width, not widening the layout

    return figure, axes, write_caption


def save_figure(figure, path: Path) -> Path:
    """Write a matplotlib figure as PNG atomically, and close it whatever happens."""
    import matplotlib.pyplot as plt

    try:
        with atomic_output(path) as temporary:
            figure.savefig(temporary, dpi=80, format="png")
    finally:
        plt.close(figure)
    return path


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
