"""The plain verdict on a protected file: is it inaudible by our checks, and what protection
the benchmark has measured for its settings. The app, the report beside each output and
`harmonycloak verify`'s last line all say it with `audio_verdict` (MIDI: on its rendering).

The audibility half judges the cloak's own noise, as the protect flow's report measures it
(the noise-to-mask ratio of the protected audio before it is encoded), and the loudness
change a listener would hear between the decoded files. The protection half is a sentence,
not a measurement of this file: what README's "Measured here" table says for the cloak, kept
here once so that every place that states it (the app, the report) says the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Noise above the masking threshold in more than 5 % of the critical (Bark) bands is called
# audible: the per-band p95 of the noise-to-mask ratio must stay at or under 0 dB.
BAND_NMR_P95_LIMIT_DB = 0.0
# A level change of half a decibel is under the just-noticeable difference of level for music
# (about 1 dB); a larger one is called audible even where the masking model forgives it
# (docs/audibility.md: changes that follow the music).
LOUDNESS_CHANGE_LIMIT_LU = 0.5
# `verify`'s further checks. ViSQOL: an identical file scores about 4.73 and MP3 at 128 kbps about
# 4.44 (docs/audibility.md); 4.6 stays clearly above a good lossy copy. A lossy file's codec alone
# adds noise of its own: the cloak may stand this far above it.
VISQOL_MIN_MOS = 4.6
CODEC_MARGIN_DB = 1.0
LEARNED_ABOUT_AS_MUCH = 0.01  # the twin check: a gap under 1 % of the loss reads as "about as much"

# What `harmonycloak bench unlearnability --suite standard` measured (README, "Measured here"
# and "Limitations"): update with them. PS is the protection score: 0 = an attacker learns
# as much as from the clean song, 1 = as little as from songs it never saw.
MEASURED_PROTECTION: dict[str, str] = {
    "dominant": "none measurable so far: on the standard benchmark (the zoo's models fine-tuned on one artist's "
                "album) this cloak's protection score is 0.00 in every family (1 would be full protection), no "
                "better than random tones under the same bounds",
    "masked": "small: this cloak alone under its band-pool rule, --objective reverse-gradient read from the "
              "zoo's next-frame models (protect's default until the gains joined it), scores 0.02 on the standard "
              "benchmark (the zoo's models fine-tuned on one artist's album) against a diffusion model it never "
              "read and 0.04 against a next-frame transformer whose public weights it reads, where 1 is full "
              "protection and random noise under the same bounds scores 0.00; it keeps that after MP3, AAC, "
              "Opus, resampling and denoising, against the transformer through a fine-tune four times as long "
              "(0.04) and against low-rank adapters (0.03), while against the diffusion model it fades to 0.01 "
              "as that fine-tune goes on. Louder noise, audible by the band check "
              "(--bound-rule bin), protects more: knowing the attacker's base model --objective "
              "reverse-gradient 0.11, 0.20 and 0.35 at low, "
              "medium and high strength (0.55 at high on the artist's songs never released) and --objective "
              "maxloss 0.18; against models of other families the reverse gradient 0.07 and 0.08, and "
              "--objective future-cue 0.06, 0.13 and 0.21 whatever the model; against models trained from "
              "scratch only the paper's objective knowing the diffusion model (0.13) beats random noise "
              "(this cloak scores −0.05 against a diffusion model and 0.01 against a next-frame transformer "
              "trained from scratch, within random noise's −0.02 and 0.02)",
    "gain": "next to none: on the standard benchmark (the zoo's models fine-tuned on one artist's album) the gain "
            "cloak alone, carrying the default's objective, scores 0.02 against a next-frame transformer whose "
            "public weights it reads and 0.01 against a diffusion model it never read (0.07 and 0.03 at high "
            "strength, ±2 dB), where 1 is full protection and random gains under the same bounds score 0.00",
    "masked-gain": "small, except against a codec-token model: protect's default for audio (noise under the masking "
                   "threshold and level-neutral gains of at most 2 dB on the music at once, held to the masking "
                   "threshold together, --objective reverse-gradient read from the zoo's next-frame models and its "
                   "codec LM) scores 1.10 on the standard benchmark (the zoo's models fine-tuned on one artist's "
                   "album) against a codec-token language model whose public weights it reads, where 1 is full "
                   "protection and random coefficients under the same bounds score 0.51 (noise at this level changes "
                   "a codec's tokens whatever it is), 1.11 after MP3 and 0.99 to 1.41 after AAC, Opus, resampling "
                   "and denoising, but 0.55 against a codec LM over a codec trained apart, whose tokens it never "
                   "read, no more than random coefficients there (0.47); 0.07 against a next-frame transformer "
                   "whose public weights it reads (0.23 on the artist's songs never released) and 0.04 against a "
                   "diffusion model it never read, where random coefficients score 0.00–0.01, kept after each of "
                   "those purifications. Against a codec LM "
                   "trained from scratch over the same public codec it scores 0.71 (0.58 after MP3; random "
                   "coefficients 0.49); against a next-frame transformer or a diffusion model trained from scratch, "
                   "reading 100 dB of level as public generators do, nothing (0.01 and −0.05, within random "
                   "coefficients). It beats random noise while passing every "
                   "audibility check and is still far from full protection against the families it does not know. "
                   "Reading the next-frame models alone (--zoo-models "
                   "ar-transformer ar-gru ar-tcn, the default before) it scored 0.10 and 0.05, and 0.51 against the "
                   "codec LM. --strength low scores 1.06 against the codec LM, 0.03 against the transformer and "
                   "0.01 against the diffusion model; --strength high 1.29, 0.15 (0.39 on the unreleased songs) and "
                   "0.07, but is audible",
    "midi": "small: on the standard benchmark (the zoo's SymphonyNet fine-tuned on one composer's pieces) the "
            "default MIDI cloak's protection score is 0.15, where 1 is full protection, held out and on the "
            "composer's unreleased pieces too; the same quiet notes without optimisation score 0.17; against the "
            "zoo's MuseGAN fine-tuned the same way it scores 0.22, no better than random velocities (0.41)",
}


@dataclass(frozen=True)
class Verdict:
    """Yes or no on audibility, with the reasons in words, and the measured protection sentence."""

    inaudible: bool | None  # None: not judged (no measurement available)
    reasons: tuple[str, ...]
    protection: str

    def text(self) -> str:
        answer = {True: "yes", False: "no", None: "not judged"}[self.inaudible]
        reasons = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return f"inaudible by our checks: {answer}{reasons}; protection measured on the benchmark: {self.protection}"


def measured_protection(kind: str, cloak: str) -> str:
    """The sentence of MEASURED_PROTECTION for a file kind ("audio", "midi") and an audio cloak."""
    return MEASURED_PROTECTION["midi" if kind == "midi" else cloak]


def audio_verdict(noise_to_mask_ratio_db: dict, loudness_change_lu: float, cloak: str, *, kind: str = "audio",
                  visqol_mos: float | None = None, clipped_samples: dict | None = None,
                  codec_band_p95_db: float | None = None) -> Verdict:
    """Judge a protected audio file (or a MIDI file's rendering, `kind` "midi").

    Args:
        noise_to_mask_ratio_db: the protect report's NMR statistics (`metrics.perceptual.
            noise_to_mask_ratio_stats_db`); its "band_p95_db" is judged.
        loudness_change_lu: integrated loudness of the protected minus the original (LU); NaN
            (too short to measure) is not judged.
        cloak: the cloak that made the noise ("dominant" or "masked").
        visqol_mos: `verify`'s ViSQOL of a lossless file (None: not judged; a lossy file's own
            re-encoding lowers it, so `verify` does not pass it).
        clipped_samples: {"original": n, "protected": m}: more clipped samples than the original is audible.
        codec_band_p95_db: a lossy file's codec alone (the original re-encoded the same way): the
            noise may stand as high as the codec's own plus `CODEC_MARGIN_DB`.
    """
    band_p95_db = noise_to_mask_ratio_db.get("band_p95_db", math.nan)
    limit_db = BAND_NMR_P95_LIMIT_DB
    if codec_band_p95_db is not None and math.isfinite(codec_band_p95_db):
        limit_db = max(limit_db, codec_band_p95_db + CODEC_MARGIN_DB)
    reasons, failed, judged = [], False, False
    if math.isfinite(band_p95_db) or band_p95_db == -math.inf:
        judged = True
        under = band_p95_db <= limit_db
        failed |= not under
        reasons.append(f"noise {'under' if under else 'above'} the masking threshold in "
                       f"{'at least' if under else 'fewer than'} 95 % of the critical bands"
                       + (f" (beyond the codec's own, {limit_db:+.1f} dB allowed)" if limit_db != BAND_NMR_P95_LIMIT_DB
                          else ""))
    if visqol_mos is not None and math.isfinite(visqol_mos):
        judged = True
        transparent = visqol_mos >= VISQOL_MIN_MOS
        failed |= not transparent
        reasons.append(f"ViSQOL {visqol_mos:.2f}")
    if clipped_samples is not None:
        judged = True
        new_clipping = clipped_samples["protected"] > clipped_samples["original"]
        failed |= new_clipping
        reasons.append(f"{clipped_samples['protected'] - clipped_samples['original']} samples clipped more"
                       if new_clipping else "no new clipping")
    if math.isfinite(loudness_change_lu):
        judged = True
        small = abs(loudness_change_lu) <= LOUDNESS_CHANGE_LIMIT_LU
        failed |= not small
        reasons.append(f"loudness change {loudness_change_lu:+.2f} LU")
    return Verdict(None if not judged else not failed, tuple(reasons), measured_protection(kind, cloak))


def twin_check_words(protection: dict | None) -> str | None:
    """`verify`'s twin check of this one file in words, or None when it was not run."""
    if protection is None:
        return None
    gap = protection["learning_gap"]
    scale = abs(protection["loss_on_original_after_training"]["original"]) or 1.0
    if abs(gap) < LEARNED_ABOUT_AS_MUCH * scale:
        words = "about as much from the protected file as from the original"
    elif gap > 0:
        words = "less from the protected file than from the original"
    else:
        words = "more from the protected file than from the original"
    return f"this file's twin check: a fresh model learned {words} (gap {gap:+.4f})"


def verdict_line(verdict: dict, protection: dict | None = None) -> str:
    """`verify`'s last line: the verdict (`verdict_json`'s), and the twin check when it ran."""
    twin = twin_check_words(protection)
    return f"verdict: {verdict['text']}" + (f"; {twin}" if twin else "")


def verdict_json(verdict: Verdict) -> dict:
    """The verdict as the JSON reports (and `verify --json`) store it."""
    return {"inaudible": verdict.inaudible, "reasons": list(verdict.reasons), "protection": verdict.protection,
            "text": verdict.text()}
