"""`harmonycloak bench metrics`: the paper's symbolic metrics on a corpus, beside the paper's figures.

A sanity check of `metrics.symbolic` on real music: the Bach chorales (music21 corpus) as
four-track rolls (soprano, alto, tenor, bass) of 4/4 bars at 12 steps per beat (48 per bar,
MuseGAN's resolution), every bar of every piece pooled per track. The paper's training data
is the Lakh MIDI Dataset in five tracks (bass, drums, guitar, piano, strings), so the figures
are not expected to match: chorales are never silent in a voice for a bar (EB near 0), use
few pitch classes per bar per voice (UPC 2-4) and hold notes of a 16th or longer (QN 100 %:
a qualified note is a 32nd or longer, 2 of the 48 steps of a bar). Table 4 (TD) has no training-data row; its
"clean music, MuseGAN" row is printed instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from harmonycloak.corpus import load_collection, stack_bars
from harmonycloak.metrics.symbolic import paper_table_row, qualified_note_min_steps, track_metrics

# Paper Table 3, "Training Data" row (Lakh MIDI; B bass, D drums, G guitar, P piano, S strings).
PAPER_TRAINING_DATA = {
    "EB (%)": {"B": 8.95, "D": 8.19, "G": 20.2, "P": 23.2, "S": 11.5},
    "UPC": {"B": 1.92, "G": 4.78, "P": 4.37, "S": 4.77},
    "QN (%)": {"B": 87.2, "G": 83.2, "P": 82.5, "S": 87.6},
    "DP (%)": {"D": 89.6},
}
# Paper Table 4, "Clean music, MuseGAN" row: tonal distance between track pairs.
PAPER_CLEAN_MUSEGAN_TD = {"B-G": 1.66, "B-S": 1.71, "B-P": 1.63, "G-S": 1.42, "G-P": 1.44, "S-P": 1.35}


def collection_metrics(collection: str = "bach", limit: int | None = None, steps_per_beat: int = 12,
                       cache_dir: str | Path | None = None) -> dict:
    """EB, UPC, QN, DP and TD of every track of a corpus collection, its 4/4 bars pooled.

    Returns:
        {"collection", "pieces", "bars", "steps_per_beat", "row": {column: value}} with the
        columns of `metrics.symbolic.paper_table_row`.
    """
    pieces = load_collection(collection, limit=limit, cache_dir=cache_dir)
    per_track: list[list[np.ndarray]] = []
    used = 0
    for piece in pieces:
        bars = stack_bars([piece], steps_per_beat=steps_per_beat)  # (bars, tracks, 48, 128); none if not 4/4
        if bars.shape[0] == 0:
            continue
        used += 1
        active = bars > 0  # only activity counts in these metrics: keep a quarter of the memory
        per_track = per_track or [[] for _ in range(active.shape[1])]
        for track, rolls in enumerate(per_track):
            rolls.append(active[:, track])
    if not used:
        return {"collection": collection, "pieces": 0, "bars": 0, "steps_per_beat": steps_per_beat, "row": {}}
    rolls = np.stack([np.concatenate(track) for track in per_track])  # (tracks, bars, 48, 128)
    names = list(pieces[0].score.tracks[index].name for index in range(rolls.shape[0]))
    metrics = track_metrics(rolls, names, [False] * len(names), min_steps=qualified_note_min_steps(rolls.shape[2]))
    return {"collection": collection, "pieces": used, "bars": int(rolls.shape[1]), "steps_per_beat": steps_per_beat,
            "row": paper_table_row(metrics)}


def format_metrics(result: dict) -> str:
    """The row as a table, with the paper's ranges over its tracks beside each metric."""
    lines = [f"Symbolic metrics of the {result['collection']} collection: {result['pieces']} pieces, "
             f"{result['bars']} bars of 4/4 at {result['steps_per_beat']} steps per beat",
             f"{'metric':<28}{'ours':>8}   paper (Lakh MIDI training data, per track)"]
    for column, value in result["row"].items():
        kind = column.rsplit(" ", 1)[0] if not column.startswith("TD") else "TD"
        if kind == "TD":
            paper = "Table 4, clean MuseGAN: " + ", ".join(f"{k} {v}" for k, v in PAPER_CLEAN_MUSEGAN_TD.items())
        else:
            values = PAPER_TRAINING_DATA.get(kind, {})
            paper = ", ".join(f"{k} {v}" for k, v in values.items())
        lines.append(f"{column:<28}{'nan' if math.isnan(value) else format(value, '.2f'):>8}   {paper}")
    return "\n".join(lines)


def run_metrics_benchmark(collection: str, limit: int | None, steps_per_beat: int, json_path: Path | None) -> dict:
    result = collection_metrics(collection, limit, steps_per_beat)
    print(format_metrics(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    return result
