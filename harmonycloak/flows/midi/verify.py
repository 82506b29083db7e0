"""How audible and how protected is a protected MIDI file? (`harmonycloak verify a.mid b.mid`)

Changes: the original's notes must come back unchanged in the protected file; what the cloak
added (its layers, `cloak.midi`) is counted, with how far each added note stays under the
note that masks it (DLS dB).

Audibility: both files rendered by FluidSynth with a General MIDI soundfont, and compared as
the audio path compares audio: SNR, noise-to-mask ratio of the difference against the
original's masking threshold, loudness change.

Protection: twin fresh surrogates (`flows.twins`): SymphonyNets (the autoregressive family,
whose NLL falls as it learns) on the protected phrases (each cloak layer read as a part of its
track's instrument) and on the original's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harmonycloak.cloak.model_input import score_phrases
from harmonycloak.errors import MidiFileError
from harmonycloak.flows.twins import format_twin_training, twin_training
from harmonycloak.flows.verdict import Verdict, audio_verdict, measured_protection, verdict_json, verdict_line
from harmonycloak.io.midi import read_midi
from harmonycloak.io.render import RENDER_INSTALL_ADVICE, can_render, render_midi
from harmonycloak.metrics.perceptual import loudness_change_lu, noise_to_mask_ratio_stats_db, snr_db
from harmonycloak.models.registry import build_model
from harmonycloak.models.symphonynet import SYMPHONYNET_LEARNING_RATE
from harmonycloak.music import Score

RENDER_RATE_HZ = 22_050  # enough for a General MIDI synthesiser's partials that matter to masking


def verify_midi_files(original_path: str | Path, protected_path: str | Path, *, protection_check: bool = True,
                      visqol: bool = True, seed: int = 0, training_steps: int = 60, model_preset: str = "default",
                      render: bool = True) -> dict:
    """Measure the changes, audibility and protection of ``protected_path`` against ``original_path``.

    `visqol` is for audio files and has no effect here (the renderings are measured without it).
    """
    original, protected = read_midi(original_path), read_midi(protected_path)
    base, layers = split_layers(original, protected, Path(protected_path))
    result = {
        "kind": "midi",
        "original": str(original_path),
        "protected": str(protected_path),
        "duration_s": original.duration_s,
        "changes": note_changes(original, base, layers),
        "audibility": rendered_audibility(Path(original_path), Path(protected_path)) if render and can_render() else None,
    }
    if protection_check:
        result["protection"] = learning_speed(original, protected, seed, training_steps, model_preset)
    audibility = result["audibility"]
    if audibility is None:
        verdict = Verdict(None, (f"not rendered: {RENDER_INSTALL_ADVICE}",), measured_protection("midi", "dominant"))
    else:
        verdict = audio_verdict(audibility["noise_to_mask_ratio_db"], audibility["loudness_change_lu"], "dominant",
                                kind="midi")
    result["verdict"] = verdict_json(verdict)
    return result


def split_layers(original: Score, protected: Score, protected_path: Path) -> tuple[list, list]:
    """(the protected file's own tracks, its cloak layers): the original's tracks come first, in
    their order, and every track after them must be a part of one of the original's instruments
    (its name and program): the cloak adds nothing else."""
    count = len(original.tracks)
    instruments = {(track.name, track.program) for track in original.tracks if not track.is_drum}
    base, layers = protected.tracks[:count], protected.tracks[count:]
    if len(base) < count or any((layer.name, layer.program) not in instruments for layer in layers):
        raise MidiFileError(f"has {len(protected.tracks)} tracks, which are not the original's {count} followed by "
                            "parts of its instruments; is it a protected version of that file?", protected_path)
    return base, layers


def note_changes(original: Score, base: list, layers: list) -> dict:
    """Notes kept, changed and added, and the level of each added note under its masker (DLS dB)."""
    unchanged, velocity_changed, moved = 0, 0, 0
    for before, after in zip(original.tracks, base):
        a, b = before.notes, after.notes
        if (len(a) == len(b) and np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start_tick, b.start_tick)
                and np.array_equal(a.end_tick, b.end_tick)):
            same = a.velocity == b.velocity
            unchanged += int(same.sum())
            velocity_changed += int((~same).sum())
        else:
            moved += abs(len(a) - len(b)) + int(min(len(a), len(b)))
    below_db = []
    for layer in layers:
        for part in (track for track in original.tracks if (track.name, track.program) == (layer.name, layer.program)):
            notes = part.notes
            for pitch, velocity, start in zip(layer.notes.pitch, layer.notes.velocity, layer.notes.start_tick):
                # the masker: the note of this pitch sounding at the added note's start, or ending there (a tail)
                touching = (notes.pitch == pitch) & (notes.start_tick <= start) & (notes.end_tick >= start)
                if touching.any():
                    below_db.append(40.0 * np.log10(notes.velocity[touching].max() / velocity))
    below = np.asarray(below_db)
    return {
        "original_notes_unchanged": unchanged,
        "original_notes_with_other_velocity": velocity_changed,
        "original_notes_moved_or_removed": moved,
        "cloak_layers": len(layers),
        "notes_added": int(sum(len(layer.notes) for layer in layers)),
        "added_below_their_note_db": ({"min": float(below.min()), "median": float(np.median(below))}
                                      if below.size else None),
    }


def rendered_audibility(original_path: Path, protected_path: Path) -> dict:
    """SNR, noise-to-mask ratio and loudness change of the FluidSynth renderings."""
    clean, cloaked = render_midi(original_path, RENDER_RATE_HZ), render_midi(protected_path, RENDER_RATE_HZ)
    length = min(clean.shape[-1], cloaked.shape[-1])
    clean, cloaked = clean[:, :length], cloaked[:, :length]
    return {
        "rendered_with": "FluidSynth, General MIDI soundfont",
        "snr_db": snr_db(clean, cloaked),
        "noise_to_mask_ratio_db": noise_to_mask_ratio_stats_db(clean, cloaked, RENDER_RATE_HZ),
        "loudness_change_lu": loudness_change_lu(clean, cloaked, RENDER_RATE_HZ),
    }


def learning_speed(original: Score, protected: Score, seed: int, steps: int, model_preset: str = "default") -> dict:
    """Twin fresh SymphonyNets on the protected and the original phrases (`flows.twins`)."""
    layout = build_model("symphonynet", model_preset).phrase_layout
    clean, cloaked = score_phrases(original, layout), score_phrases(protected, layout)
    result = twin_training(lambda: build_model("symphonynet", model_preset, seed=seed, tracks=clean.shape[1]),
                           clean, cloaked, steps, seed, learning_rate=SYMPHONYNET_LEARNING_RATE)
    return {"model": f"symphonynet ({model_preset})", **result}


def format_midi_verification(result: dict) -> str:
    """The measurements as a short text a musician can read."""
    changes = result["changes"]
    below = changes["added_below_their_note_db"]
    lines = [
        f"{result['protected']}  vs  {result['original']}  ({result['duration_s']:.1f} s)",
        "What changed?",
        f"  original notes unchanged   {changes['original_notes_unchanged']} "
        f"(other velocity: {changes['original_notes_with_other_velocity']}, moved or removed: "
        f"{changes['original_notes_moved_or_removed']})",
        f"  notes added                {changes['notes_added']} in {changes['cloak_layers']} cloak layer(s)"
        + (f", {below['min']:.1f} dB or more (median {below['median']:.1f} dB) under the note that masks them"
           if below else ""),
    ]
    audible = result["audibility"]
    if audible is None:
        lines.append("How audible is the change?  (not measured: FluidSynth or a General MIDI soundfont is missing; "
                     f"{RENDER_INSTALL_ADVICE})")
    else:
        nmr = audible["noise_to_mask_ratio_db"]
        lines += [
            "How audible is the change? (both files rendered by FluidSynth)",
            f"  SNR                   {audible['snr_db']:.1f} dB",
            f"  noise-to-mask ratio   per bin: p95 {nmr['p95_db']:.1f} dB, {100 * nmr['fraction_above_0db']:.1f} % above "
            f"the masking threshold; per Bark band: p95 {nmr['band_p95_db']:.1f} dB, "
            f"{100 * nmr['band_fraction_above_0db']:.1f} % above",
            f"  loudness change       {audible['loudness_change_lu']:+.2f} LU",
        ]
    if "protection" in result:
        lines += format_twin_training(result["protection"], result["protection"]["model"], "MIDI")
    lines.append(verdict_line(result["verdict"], result.get("protection")))
    return "\n".join(lines)
