"""The report of a protected MIDI file: the JSON (`results.write_json_report`) and a picture of
the piano rolls of the original, the protected version and the noise (protected − original),
all tracks overlaid (the loudest track in a cell shows), time in steps with bar lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harmonycloak.flows.results import figure_with_caption, report_paths, save_figure, write_json_report


def write_midi_report_files(report: dict, clean: np.ndarray, protected: np.ndarray, track_names: list[str],
                            output_path: Path, picture: bool = True) -> tuple[Path, Path | None]:
    """Write <output stem>.report.json and (if `picture`) .report.png beside the output; returns
    their paths (None for a picture not drawn).

    Args:
        clean, protected: rolls (tracks, steps, 128) of velocity / 127, as the models read them.
    """
    json_path = write_json_report(report, output_path)
    if not picture:
        return json_path, None
    picture_path = report_paths(output_path)[1]
    plot_piano_rolls(clean, protected, picture_path, title=f"{Path(report['output']).name}  "
                     f"({len(track_names)} tracks: {', '.join(track_names)})", caption=picture_caption(report))
    return json_path, picture_path


def picture_caption(report: dict) -> str:
    """What the picture shows, in words, and what the report can say of the added notes."""
    below = report.get("cloak_below_its_note_db")
    lines = [
        "What this shows: the piano roll of the original (time left to right, pitch bottom to top, bright = loud), "
        "of the protected file, and of the notes that were added (your own notes are kept exactly).",
    ]
    if below:
        lines.append(f"Verdict: {report.get('notes_added', 0)} quiet notes added, each {below['min']:.1f} dB or more "
                     f"(median {below['median']:.1f} dB) under the note that masks it. How audible that is: "
                     "`harmonycloak verify` renders both files with FluidSynth and measures it.")
    return "\n".join(lines)


def plot_piano_rolls(clean: np.ndarray, protected: np.ndarray, path: Path, title: str = "", caption: str = "") -> Path:
    """Piano rolls of original, protected and noise as a PNG, in MIDI velocity (0-127), with a caption below."""
    sounding = np.flatnonzero((clean + protected).max(axis=(0, 1)) > 0)
    low, high = (int(sounding.min()) - 2, int(sounding.max()) + 3) if len(sounding) else (0, 128)
    low, high = max(low, 0), min(high, 128)
    panels = {
        "original": 127 * clean.max(axis=0),
        "protected": 127 * protected.max(axis=0),
        "noise: protected − original": 127 * (protected - clean).max(axis=0),
    }
    figure, axes, write_caption = figure_with_caption(3, (12, 10), caption_lines=4)
    extent = [0, clean.shape[1], low - 0.5, high - 0.5]
    for axis, (name, values) in zip(axes, panels.items()):
        top = 127 if name != "noise: protected − original" else max(float(values.max()), 1.0)
        image = axis.imshow(values[:, low:high].T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                            vmin=0, vmax=top, interpolation="nearest")
        axis.set_title(f"{name} (MIDI velocity)")
        axis.set_ylabel("MIDI pitch")
        figure.colorbar(image, ax=axis)
    axes[-1].set_xlabel("piano-roll step")
    figure.suptitle(title)
    write_caption(caption)
    return save_figure(figure, path)
