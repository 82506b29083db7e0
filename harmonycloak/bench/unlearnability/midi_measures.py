"""What the MIDI attackers generate, judged (paper Tables 3 and 4): EB, UPC, QN and TD per track.

The paper's evidence for MuseGAN is what it generates after training on protected music:
more empty bars, fewer qualified notes, tracks out of tune with each other. Here each trained
attacker writes `MidiSpec.generated_phrases` phrases:

* MuseGAN from random latents, binarised by MuseGAN's hard threshold (a cell sounds where the
  generator's output is ≥ 0.5);
* SymphonyNet continuing the first bar of each protected piece (its own sampling); only the
  continuation is measured, as for the audio models.

Both are measured with `metrics.symbolic` at the model's own resolution, beside the protected
pieces themselves as the model reads them (`reference_measures`: MuseGAN sees only its pitch
range). QN's shortest note is a 32nd note (`qualified_note_min_steps`): on a grid of 16 or
fewer steps per bar every note qualifies, so QN is 100 % by construction there. DP needs drums,
which the corpus pieces have not.

In the MIDI style-mimicry threat the same generated phrases are judged against the composer's
unreleased pieces (`style_measures`): the Fréchet distance between the two sets of bars, each
bar described by `metrics.symbolic.bar_descriptors` (pitch-class profile, and per track how
much it sounds, how many pitch classes, in what register), and the share of the written bars
that a classifier of the composer against the zoo's own corpus labels the composer
(`midi_mimicry.composer_or_corpus_judge`). A GAN has no likelihood of a piece to compare, so
these say whether a fine-tune taught it the composer's music.

Shapes: phrases / rolls (B, M, T, 128), velocities in [0, 1]; bars (M, bars, steps_per_bar, 128).
"""

from __future__ import annotations

import math

import numpy as np
import torch

SUMMARY_COLUMNS = ("EB (%)", "UPC", "QN (%)", "TD")  # each the mean over tracks (TD: over track pairs)


def rolls_to_bars(rolls: torch.Tensor, steps_per_bar: int) -> np.ndarray:
    """Phrases (B, M, T, 128), T a whole number of bars → bars (M, B·T/steps_per_bar, steps_per_bar, 128)."""
    batch, tracks, steps, pitches = rolls.shape
    bars = rolls.detach().cpu().numpy().reshape(batch, tracks, steps // steps_per_bar, steps_per_bar, pitches)
    return bars.transpose(1, 0, 2, 3, 4).reshape(tracks, -1, steps_per_bar, pitches)


def symbolic_measures(bars: np.ndarray) -> dict:
    """Table 3/4 metrics of bars (M, bars, steps_per_bar, 128): per track and averaged over tracks.

    Returns {"symbolic": {column: mean over tracks (TD: over pairs)}, "per_track": paper_table_row,
    "bars": bars per track}; NaN where a metric is undefined everywhere (e.g. no bars).
    """
    from harmonycloak.metrics.symbolic import paper_table_row, qualified_note_min_steps, track_metrics

    tracks = bars.shape[0]
    if bars.shape[1] == 0:
        return {"symbolic": {column: math.nan for column in SUMMARY_COLUMNS}, "per_track": {}, "bars": 0}
    names = [f"track {index + 1}" for index in range(tracks)]
    row = paper_table_row(track_metrics(bars, names, [False] * tracks,
                                        min_steps=qualified_note_min_steps(bars.shape[2])))
    summary = {}
    for column in SUMMARY_COLUMNS:
        values = [v for k, v in row.items() if k.startswith(column + " ") and not math.isnan(v)]
        summary[column] = float(np.mean(values)) if values else math.nan
    return {"symbolic": summary, "per_track": row, "bars": int(bars.shape[1])}


def model_view(model, phrases: torch.Tensor) -> torch.Tensor:
    """The phrases (B, M, T, 128) as the model reads them: MuseGAN drops pitches outside its range."""
    if model.family == "musegan":
        return model.to_rolls(model.features(phrases))
    return phrases


def generated_rolls(model, family: str, prompts: torch.Tensor, num_phrases: int, steps_per_bar: int,
                    seed: int) -> torch.Tensor:
    """What a trained attacker writes: rolls (num_phrases, M, T, 128) with 0/velocity cells.

    `prompts` are clean phrases (B, M, T, 128) of the protected pieces; SymphonyNet continues the
    first bar of phrase i mod B and only the continuation is returned; MuseGAN ignores them.
    """
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()  # batch-norm statistics of the trained generator
    try:
        with torch.no_grad():
            if family == "musegan":
                rolls = model.generate(num_phrases, generator)
                return torch.where(rolls >= 0.5, rolls, torch.zeros_like(rolls))
            chosen = prompts[torch.arange(num_phrases) % prompts.shape[0]]
            first_bar = chosen[:, :, :steps_per_bar]
            written = model.generate(first_bar, prompts.shape[2] - steps_per_bar, generator)
            return written[:, :, steps_per_bar:]
    finally:
        model.train(was_training)


def judge_midi_model(model, family: str, prompts: torch.Tensor, num_phrases: int, steps_per_bar: int,
                     seed: int) -> dict:
    """`symbolic_measures` of what the model generates (see `generated_rolls`), with the seed."""
    if prompts.shape[0] == 0:
        return {}
    rolls = generated_rolls(model, family, prompts, num_phrases, steps_per_bar, seed)
    return {**symbolic_measures(rolls_to_bars(rolls, steps_per_bar)), "phrases": num_phrases, "seed": seed}


def reference_measures(model, prompts: torch.Tensor, steps_per_bar: int) -> dict:
    """`symbolic_measures` of the protected pieces' clean phrases (B, M, T, 128) as `model` reads them."""
    with torch.no_grad():
        return symbolic_measures(rolls_to_bars(model_view(model, prompts), steps_per_bar))


def style_measures(model, family: str, references: torch.Tensor, num_phrases: int, steps_per_bar: int, seed: int,
                   judge=None, composer: str = "bach") -> dict[str, float]:
    """What the model writes (`generated_rolls`, SymphonyNet prompted by `references`) against
    `references` (B, M, T, 128) as the model reads them (module docstring):

      fd_artist     the FD between the two sets of bars in `bar_descriptors`;
      artist_share  with a `judge` of the composer (a `metrics.style.StyleClassifier` with a class
                    named `composer`), the share of the written bars that sound which it labels
                    the composer (`bar_segments`).

    {} without references."""
    from harmonycloak.bench.generated import embedding_fd
    from harmonycloak.metrics.style import label_shares
    from harmonycloak.metrics.symbolic import bar_descriptors

    if references.shape[0] == 0:
        return {}
    seen = model_view(model, references)
    written = generated_rolls(model, family, seen, num_phrases, steps_per_bar, seed)
    measures = {"fd_artist": embedding_fd(bar_descriptors(rolls_to_bars(written, steps_per_bar)),
                                          bar_descriptors(rolls_to_bars(seen, steps_per_bar)))}
    if judge is not None:
        segments = bar_segments(written, steps_per_bar, judge.config.steps_per_beat)
        measures["artist_share"] = label_shares(judge, segments)[composer]
    return measures


def style_distance(model, family: str, references: torch.Tensor, num_phrases: int, steps_per_bar: int,
                   seed: int) -> float:
    """`style_measures`' FD alone; NaN without references."""
    return style_measures(model, family, references, num_phrases, steps_per_bar, seed).get("fd_artist", math.nan)


def bar_segments(rolls: torch.Tensor, steps_per_bar: int, steps_per_beat: int) -> np.ndarray:
    """Rolls (B, M, T, 128) of 4/4 bars → one segment per bar at `steps_per_beat`, (B · bars, M,
    4 · steps_per_beat, 128): a cell sounds where any of the finer steps it spans does.

    Raises:
        SettingsError: a bar's steps that do not fall into whole beats of that resolution.
    """
    from harmonycloak.errors import SettingsError

    coarse_steps = 4 * steps_per_beat
    if steps_per_bar % coarse_steps:
        raise SettingsError(f"{steps_per_bar} steps per bar cannot be read at {steps_per_beat} steps per beat")
    batch, tracks, steps, pitches = rolls.shape
    factor = steps_per_bar // coarse_steps
    cells = rolls.detach().cpu().numpy().reshape(batch, tracks, steps // steps_per_bar, coarse_steps, factor, pitches)
    coarse = cells.max(axis=4)  # (B, M, bars, coarse steps, 128)
    return coarse.transpose(0, 2, 1, 3, 4).reshape(-1, tracks, coarse_steps, pitches)
