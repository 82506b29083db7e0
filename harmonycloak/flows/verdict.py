"""`verify`'s plain verdict: is the change audible by the checks it measured, and did the twin
models learn less from the protected file?

Each check compares one measure of `verify` with a limit. A file passes when every measured
check passes; a measure that could not be taken (ViSQOL skipped, a clip too short for
loudness, MIDI without FluidSynth) is named as not judged. The limits, and why:

- ViSQOL MOS ≥ 4.6: an identical file scores about 4.73 and MP3 at 128 kbps about 4.44
  (docs/audibility.md); not judged on a lossy file, whose own re-encoding lowers it.
- |loudness change| ≤ 0.1 LU: under what listeners notice between two takes of a song.
- per-Bark-band noise-to-mask ratio p95 ≤ −3 dB: the noise stays under the masking threshold
  with a margin in 95 % of band-frames (the stricter of `verify`'s two NMR readings). On a
  lossy file the codec alone already adds noise; its own p95 plus 1 dB is allowed if higher.
- no more clipped samples than the original.
"""

from __future__ import annotations

import math

VISQOL_MIN_MOS = 4.6
LOUDNESS_MAX_CHANGE_LU = 0.1
BAND_NMR_P95_MAX_DB = -3.0
CODEC_MARGIN_DB = 1.0  # a lossy file: allowed above the codec's own band NMR p95
LEARNED_ABOUT_AS_MUCH = 0.01  # twin check: a gap under 1 % of the loss reads as "about as much"


def audibility_verdict(audibility: dict | None, lossy: bool = False) -> dict:
    """{"audible": True/False/None, "checks": [{"name", "value", "limit", "passed"}], "not_judged": [...]}

    `audible` is None when no check could be measured.
    """
    checks, not_judged = [], []
    if audibility is None:
        return {"audible": None, "checks": [], "not_judged": ["everything (nothing rendered)"]}

    def check(name: str, value, limit: str, passed) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            not_judged.append(name)
        else:
            checks.append({"name": name, "value": value, "limit": limit, "passed": bool(passed(value))})

    visqol = audibility.get("visqol_mos")
    if lossy:
        not_judged.append("ViSQOL (a lossy file: the codec alone lowers it)")
    elif "visqol_mos" in audibility:
        check("ViSQOL", visqol, f"≥ {VISQOL_MIN_MOS:.2f}", lambda v: v >= VISQOL_MIN_MOS)
    check("loudness change (LU)", audibility.get("loudness_change_lu"), f"within ±{LOUDNESS_MAX_CHANGE_LU:.2f}",
          lambda v: abs(v) <= LOUDNESS_MAX_CHANGE_LU)
    limit_db = BAND_NMR_P95_MAX_DB
    codec = audibility.get("codec_alone")
    if codec is not None and math.isfinite(codec["noise_to_mask_ratio_db"]["band_p95_db"]):
        limit_db = max(limit_db, codec["noise_to_mask_ratio_db"]["band_p95_db"] + CODEC_MARGIN_DB)
    check("per-band noise-to-mask ratio p95 (dB)", audibility["noise_to_mask_ratio_db"]["band_p95_db"],
          f"≤ {limit_db:.1f}", lambda v: v <= limit_db)
    clipped = audibility.get("clipped_samples")
    if clipped is not None:
        check("clipped samples", clipped["protected"], f"≤ {clipped['original']} (the original's)",
              lambda v: v <= clipped["original"])
    audible = None if not checks else not all(c["passed"] for c in checks)
    return {"audible": audible, "checks": checks, "not_judged": not_judged}


def protection_verdict(protection: dict | None) -> str | None:
    """The twin check in words, or None when it was not run."""
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
    return f"a fresh model learned {words} (gap {gap:+.4f})"


def format_verdict(verdict: dict, protection: dict | None) -> str:
    """The one last line of `verify`: the verdict and the checks it rests on."""
    def value(check: dict) -> str:
        return f"{check['value']:.2f}" if isinstance(check["value"], float) else str(check["value"])

    if verdict["audible"] is None:
        line = "verdict: audibility not judged (nothing could be measured)"
    elif verdict["audible"]:
        failed = [f"{c['name']} {value(c)}, limit {c['limit']}" for c in verdict["checks"] if not c["passed"]]
        line = "verdict: AUDIBLE by our checks: " + "; ".join(failed)
    else:
        line = "verdict: inaudible by our checks (" + "; ".join(
            f"{c['name']} {value(c)} {c['limit']}" for c in verdict["checks"]) + ")"
    if verdict["not_judged"]:
        line += f"; not judged: {', '.join(verdict['not_judged'])}"
    protection_words = protection_verdict(protection)
    if protection_words:
        line += f"; protection: {protection_words}"
    return line
