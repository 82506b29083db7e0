"""`harmonycloak bench metrics` on real chorales, checked against counts made from the notes."""

from __future__ import annotations

import numpy as np
import pytest

from harmonycloak.bench.symbolic_metrics import collection_metrics, format_metrics
from harmonycloak.cli import main
from harmonycloak.corpus import load_collection


def test_chorale_metrics_agree_with_counts_from_the_notes(tmp_path):
    result = collection_metrics("bach", limit=5, cache_dir=tmp_path)
    pieces = [p for p in load_collection("bach", limit=5, cache_dir=tmp_path)
              if all((ts.numerator, ts.denominator) == (4, 4) for ts in p.score.time_signatures)
              and np.diff(p.score.bar_lines_tick).max() <= 4 * p.score.ticks_per_beat]
    assert result["pieces"] == len(pieces) >= 3
    assert result["bars"] == sum(len(p.score.bar_lines_tick) - 1 for p in pieces)
    for voice in ("soprano", "alto", "tenor", "bass"):
        # EB by hand: a bar is empty where no note of the voice overlaps it
        empty = 0
        for piece in pieces:
            notes = next(t for t in piece.score.tracks if t.name == voice).notes
            lines = piece.score.bar_lines_tick
            for start, end in zip(lines[:-1], lines[1:]):
                empty += not ((notes.start_tick < end) & (notes.end_tick > start)).any()
        assert result["row"][f"EB (%) {voice}"] == pytest.approx(100 * empty / result["bars"], rel=1e-12)
        # QN: every note lasts at least a 16th, i.e. 3 steps at 12 steps per beat -> 100 %
        shortest = min(((t.notes.end_tick - t.notes.start_tick) * 12 / p.score.ticks_per_beat).min()
                       for p in pieces for t in p.score.tracks if t.name == voice)
        assert shortest >= 3 and result["row"][f"QN (%) {voice}"] == 100.0
        assert 1.0 <= result["row"][f"UPC {voice}"] <= 12.0
    assert 0.0 <= result["row"]["TD soprano-bass"] <= 5.0
    assert "paper" in format_metrics(result)


def test_bench_metrics_on_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # leave the user's corpus cache alone
    assert main(["bench", "metrics", "--limit", "2", "--json", str(tmp_path / "m.json")]) == 0
    assert "UPC soprano" in capsys.readouterr().out and (tmp_path / "m.json").exists()
