"""What the audio attackers generate, judged (paper Tables 3–5, Fig. 8): the measures of `metrics`.

For a trained next-frame model, `GeneratedMeasures` prompts it with the opening `prompt_s` of
songs, lets it continue for `generated_s` (`models.audio_generation.generate_waveform`:
log-mel frames → waveform), and measures the continuations:

* FAD against the clean songs (`metrics.audio.frechet_audio_distance`, offline
  spectral-statistics embedder: no weights can be downloaded here; pass a VGGish weights file
  to the metrics module to use VGGish);
* the paper's Table 3/4 metrics (EB, UPC, QN, TD; DP needs drums, which transcriptions have
  not) on Basic Pitch transcriptions (`metrics.transcription`) at the paper's 96 steps per bar
  (so that QN's 32nd note exists), beside the same metrics of the protected songs themselves,
  transcribed the same way (`reference`);
* the composer/style classifier (`metrics.style`, trained on clean corpus pieces at 16 steps
  per bar) on the same transcriptions: the share of continuations labelled as each composer.

Style unlearnability (Fig. 8): protect one whole artist; a model that learned the artist's
style continues the artist's openings in that style more often than a model that never
heard the artist. `style_share` is that share; compare clean, cloaked and unseen.

Shapes: songs (N,) float32 at 16 kHz; rolls (bars, steps_per_bar, 128).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

STEPS_PER_BEAT = 4  # the style classifier's resolution
METRIC_STEPS_PER_BEAT = 24  # the symbolic metrics' resolution: 96 steps per bar, as MuseGAN's QN assumes


@dataclass(frozen=True)
class MeasureSpec:
    """How much music each measured attacker generates (a suite fixes it)."""

    conditions: tuple[str, ...] = ("clean", "cloak-whitebox", "cloak-blackbox", "unseen")  # which runs to judge
    clips: int = 4  # continuations per model
    prompt_s: float = 0.5  # opening of a protected song given as the prompt
    generated_s: float = 4.0  # length of each continuation
    temperature: float = 0.1  # sampling noise of generation (front-end units); 0 = greedy
    griffin_lim_iterations: int = 32
    style: bool = True  # the style experiment: one whole artist protected
    style_artist: str = "bach"
    style_families: tuple[str, ...] = ("ar-transformer",)
    classifier_files_per_style: int = 20  # corpus files read per composer to train the classifier


class GeneratedMeasures:
    """Judges of generated audio, built once per benchmark run (the transcriber and the classifier)."""

    def __init__(self, spec: MeasureSpec, seed: int = 0) -> None:
        from harmonycloak.metrics.style import DEFAULT_STYLES, StyleClassifierConfig, train_corpus_classifier
        from harmonycloak.metrics.transcription import BasicPitchTranscriber

        self.spec = spec
        self.transcriber = BasicPitchTranscriber()
        limits = {style: spec.classifier_files_per_style for style in DEFAULT_STYLES}
        limits["essen"] = 1  # one Essen file holds hundreds of tunes
        self.classifier, self.classifier_report = train_corpus_classifier(
            DEFAULT_STYLES, limit_per_style=limits, max_segments_per_style=400,
            config=StyleClassifierConfig(steps_per_beat=STEPS_PER_BEAT, seed=seed))

    def rolls(self, clips: list[np.ndarray], sample_rate_hz: int) -> dict[int, np.ndarray]:
        """Transcribed 4/4 bars of every clip, stacked, at each resolution: {steps per beat: (bars, 4·steps, 128)}."""
        scores = [self.transcriber.transcribe(c, sample_rate_hz) for c in clips]
        out = {}
        for steps_per_beat in (METRIC_STEPS_PER_BEAT, STEPS_PER_BEAT):
            bars = [s.piano_roll(steps_per_beat).bars(4 * steps_per_beat)[0] for s in scores]
            bars = [b for b in bars if b.shape[0]]
            out[steps_per_beat] = (np.concatenate(bars) if bars else
                                   np.zeros((0, 4 * steps_per_beat, 128), np.float32))
        return out

    def symbolic_row(self, rolls: np.ndarray) -> dict[str, float]:
        """Table 3/4 metrics of transcribed bars (bars, steps_per_bar, 128), one track; NaN where there are no bars."""
        from harmonycloak.metrics.symbolic import paper_table_row, qualified_note_min_steps, track_metrics

        if rolls.shape[0] == 0:
            return {"EB (%) transcribed": math.nan, "UPC transcribed": math.nan, "QN (%) transcribed": math.nan}
        return paper_table_row(track_metrics(rolls[None], ["transcribed"], [False],
                                             min_steps=qualified_note_min_steps(rolls.shape[1])))

    def _measured(self, rolls: dict[int, np.ndarray]) -> dict:
        return {"symbolic": self.symbolic_row(rolls[METRIC_STEPS_PER_BEAT]),
                "style_share": self.style_shares(rolls[STEPS_PER_BEAT]), "bars": int(rolls[STEPS_PER_BEAT].shape[0])}

    def style_shares(self, rolls: np.ndarray) -> dict[str, float]:
        """Share of transcribed bars (bars, steps, 128) the classifier labels as each composer (empty bars are not classified)."""
        from harmonycloak.metrics.style import label_shares

        return label_shares(self.classifier, rolls[:, None])

    def reference(self, songs: list[np.ndarray], sample_rate_hz: int) -> dict:
        """The same measures of the training songs themselves (the "real data" row of Table 3)."""
        return self._measured(self.rolls(songs, sample_rate_hz))

    def judge(self, model: torch.nn.Module, songs: list[np.ndarray], sample_rate_hz: int, seed: int) -> dict:
        """Generate continuations of `songs`' openings with `model` and measure them."""
        from harmonycloak.metrics.audio import frechet_audio_distance
        from harmonycloak.models.audio_generation import generate_waveform

        spec = self.spec
        prompt_samples = round(spec.prompt_s * sample_rate_hz)
        prompts = torch.from_numpy(np.stack([songs[i % len(songs)][:prompt_samples] for i in range(spec.clips)]))
        hop = model.config.frontend.hop_length
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        with torch.no_grad():
            waveforms = generate_waveform(model, prompts.to(device), round(spec.generated_s * sample_rate_hz / hop),
                                          generator, spec.temperature, spec.griffin_lim_iterations)
        clips = [w.cpu().numpy() for w in waveforms]
        return {"fad_vs_clean_songs": frechet_audio_distance(songs, clips, sample_rate_hz),
                **self._measured(self.rolls(clips, sample_rate_hz)), "clips": len(clips), "seed": seed}
