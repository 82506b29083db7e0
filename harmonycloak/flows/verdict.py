"""The plain verdict on a protected file: is it inaudible by our checks, and what protection
the benchmark has measured for its settings.

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

# What `harmonycloak bench unlearnability --suite standard` measured (README, "Measured here"
# and "Limitations"): update with them. PS is the protection score: 0 = an attacker learns
# as much as from the clean song, 1 = as little as from songs it never saw.
MEASURED_PROTECTION: dict[str, str] = {
    "dominant": "none measurable so far: on the standard benchmark (the zoo's models fine-tuned on one artist's "
                "album) this cloak's protection score is 0.00 in every family (1 would be full protection), no "
                "better than random tones under the same bounds",
    "masked": "small so far: on the standard benchmark the masked cloak beats its random control only white-box "
              "against the next-frame transformer (protection score 0.11, where 1 is full protection), "
              "black-box 0.03 at most",
    "gain": "not measured yet: the gain cloak has no run on the standard benchmark so far",
    "midi": "not measured yet: the benchmark's threat models measure audio; see the README's Limitations",
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


def audio_verdict(noise_to_mask_ratio_db: dict, loudness_change_lu: float, cloak: str) -> Verdict:
    """Judge a protected audio file.

    Args:
        noise_to_mask_ratio_db: the protect report's NMR statistics (`metrics.perceptual.
            noise_to_mask_ratio_stats_db`); its "band_p95_db" is judged.
        loudness_change_lu: integrated loudness of the protected minus the original (LU); NaN
            (too short to measure) is not judged.
        cloak: the cloak that made the noise ("dominant" or "masked").
    """
    band_p95_db = noise_to_mask_ratio_db.get("band_p95_db", math.nan)
    reasons, failed, judged = [], False, False
    if math.isfinite(band_p95_db) or band_p95_db == -math.inf:
        judged = True
        under = band_p95_db <= BAND_NMR_P95_LIMIT_DB
        failed |= not under
        reasons.append(f"noise {'under' if under else 'above'} the masking threshold in "
                       f"{'at least' if under else 'fewer than'} 95 % of the critical bands")
    if math.isfinite(loudness_change_lu):
        judged = True
        small = abs(loudness_change_lu) <= LOUDNESS_CHANGE_LIMIT_LU
        failed |= not small
        reasons.append(f"loudness change {loudness_change_lu:+.2f} LU")
    return Verdict(None if not judged else not failed, tuple(reasons), measured_protection("audio", cloak))
