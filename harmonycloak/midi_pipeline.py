"""From a MIDI file to a protected MIDI file: read, cloak, write, report.

The MIDI counterpart of `pipeline.protect_file` (which hands .mid/.midi files here):

    score = read_midi(song.mid)                       # bad MIDI: one-line MidiFileError
    surrogates = the named checkpoint (white-box: MuseGAN or SymphonyNet)
                 or a bag of 10 MuseGAN variants (black-box, the paper's §5.1 setting)
    cloak = quiet notes at each 10 ms window's dominant note (`cloak.midi`)
    optimise_noise(MidiCloakProblem(...), surrogates)  # the one min-min loop
    write_midi(score + cloak layers) + report JSON + piano-roll picture

The roll resolution and phrase length come from the models: MuseGAN reads 4-bar phrases of
48 steps a bar (12 per beat), and so does the black-box bag; a white-box SymphonyNet reads
segments of up to 4 bars at its own steps per bar.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harmonycloak.cloak.midi import MIDI_STRENGTH_HEADROOM_DB, MidiCloakSettings, MidiDominantCloak, protected_score
from harmonycloak.cloak.midi_problem import MidiCloakProblem
from harmonycloak.errors import MidiFileError, ModelError, SettingsError
from harmonycloak.io.atomic import refuse_to_replace
from harmonycloak.io.midi import MIDI_SUFFIXES, as_type_1, read_midi, write_midi
from harmonycloak.models.checkpoint import load_checkpoint
from harmonycloak.models.musegan import PhraseFormat, build_musegan_bag
from harmonycloak.music import Score, ticks_to_steps
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.settings import PAPER_ALPHA, ProtectionSettings

FAMILY_KIND = {"musegan": "gan", "symphonynet": "transformer"}
BLACKBOX_PHRASE = {"default": (48, 4), "tiny": (16, 2)}  # (steps per 4/4 bar, bars per phrase)
MAX_SEGMENT_BARS = 4  # SymphonyNet segments: at most this many bars (MuseGAN's phrase length)


@dataclass
class MidiSurrogates:
    """The models the noise is optimised against, and the phrases they read."""

    models: list[nn.Module]
    family: str  # "musegan" or "symphonynet"
    steps_per_bar: int  # slot of one bar; a 4/4 bar fills it
    bars_per_segment: int

    @property
    def steps_per_beat(self) -> int:
        return self.steps_per_bar // 4


def longest_bar_steps(score: Score, steps_per_beat: int) -> int:
    """Steps of the longest bar of ``score`` at ``steps_per_beat``."""
    return int(np.diff(ticks_to_steps(score.bar_lines_tick, steps_per_beat, score.ticks_per_beat)).max(initial=1))


def build_midi_surrogates(score: Score, settings: ProtectionSettings, device: torch.device) -> MidiSurrogates:
    """White-box: the checkpoint, checked against the score; black-box: the MuseGAN bag for its tracks."""
    num_tracks = len(score.tracks)
    if settings.mode == "whitebox":
        model, family = load_checkpoint(settings.model_checkpoint)
        if family == "musegan":
            phrase = model.config.phrase
            tracks, steps_per_bar, bars = phrase.tracks, phrase.steps_per_bar, phrase.bars
        elif family == "symphonynet":
            config = model.config
            tracks, steps_per_bar, bars = config.tracks, config.steps_per_bar, min(MAX_SEGMENT_BARS, config.max_bars)
        else:
            raise ModelError("this checkpoint is an audio model; use it with an audio file", settings.model_checkpoint)
        if tracks != num_tracks:
            raise ModelError(f"the model reads {tracks} tracks but {score.source_path or 'the score'} has "
                             f"{num_tracks}", settings.model_checkpoint)
        if steps_per_bar % 4:
            raise ModelError(f"the model's bars of {steps_per_bar} steps are not 4 beats of whole steps",
                             settings.model_checkpoint)
        return MidiSurrogates([model.to(device)], family, steps_per_bar, bars)
    tiny = settings.model_preset == "tiny"
    nominal, bars = BLACKBOX_PHRASE["tiny" if tiny else "default"]
    # A bar longer than 4/4 (6/4, 12/8) gets a slot of whole multiples of the nominal one.
    steps_per_bar = nominal * -(-longest_bar_steps(score, nominal // 4) // nominal)
    phrase = PhraseFormat(tracks=num_tracks, bars=bars, steps_per_bar=steps_per_bar, lowest_pitch=24, octaves=7)
    bag = build_musegan_bag(settings.bag_size, settings.seed, tiny=tiny, phrase=phrase)
    return MidiSurrogates([model.to(device) for model in bag], "musegan", steps_per_bar, bars)


@dataclass
class MidiCloakOutcome:
    protected: Score  # the score with its cloak layers
    problem: MidiCloakProblem
    summary: dict


def cloak_score(score: Score, settings: ProtectionSettings, progress=None,
                *, surrogates: MidiSurrogates | None = None) -> MidiCloakOutcome:
    """Optimise the MIDI cloak of ``score`` against the surrogates the settings name (or `surrogates`:
    the benchmark's bags that leave the attacker's architecture out)."""
    from harmonycloak.pipeline import resolve_device

    device = resolve_device(settings.device)
    generator = torch.Generator().manual_seed(settings.seed)
    surrogates = build_midi_surrogates(score, settings, device) if surrogates is None else surrogates
    cloak_settings = MidiCloakSettings(window_ms=settings.window_ms,
                                       headroom_db=MIDI_STRENGTH_HEADROOM_DB[settings.strength])
    cloak = MidiDominantCloak(score, surrogates.steps_per_beat, cloak_settings)
    if cloak.num_runs == 0:
        raise MidiFileError("has no pitched note loud and long enough to hide noise under (drums get none)",
                            score.source_path)
    longest = longest_bar_steps(score, surrogates.steps_per_beat)
    if longest > surrogates.steps_per_bar:
        raise MidiFileError(f"has a bar of {longest} steps, longer than the {surrogates.steps_per_bar} steps of the "
                            "model's bars", score.source_path)
    problem = MidiCloakProblem(score, cloak, surrogates.steps_per_bar, surrogates.bars_per_segment).to(device)
    alpha = PAPER_ALPHA[FAMILY_KIND[surrogates.family]] if settings.alpha is None else settings.alpha
    config = MinMinConfig(mode=settings.mode, pgd_steps=settings.pgd_steps, alpha=alpha, max_rounds=settings.max_rounds,
                          models_per_round=settings.models_per_round)
    models = surrogates.models

    def losses() -> dict[str, float]:
        return {
            "clean": mean_generative_loss(models, problem.clean_batch, problem.num_segments),
            "protected": mean_generative_loss(models, problem.written_batch, problem.num_segments),
        }

    before = losses()
    history = optimise_noise(problem, models, config, generator, progress)
    after = losses()
    velocity = cloak.quantised_velocity()
    below_db = 40.0 * np.log10(cloak.runs.note_velocity / np.maximum(velocity, 1))
    names = [track.name or f"track {index + 1}" for index, track in enumerate(score.tracks)]
    summary = {
        "kind": "midi",
        "device": str(device),
        "surrogates": [surrogates.family] * len(models),
        "alpha": alpha,
        "steps_per_beat": surrogates.steps_per_beat,
        "surrogate_loss_before": before,
        "surrogate_loss_after": after,  # "protected": with the velocities as written to the file
        "rounds": asdict(history),
        "segments": problem.num_segments,
        "windows_per_track": cloak.num_windows,
        "notes_added": cloak.num_runs,
        "tracks_cloaked": [names[index] for index in cloak.tracks_cloaked],
        "tracks_without_noise": {names[index]: "no free MIDI channel for its cloak layer"
                                 for index in cloak.tracks_without_channel}
                                | {name: "drums" for name, track in zip(names, score.tracks) if track.is_drum},
        "cloak_velocity": _stats(velocity),
        "cloak_below_its_note_db": _stats(below_db),  # DLS dB between each added note and its dominant note
    }
    return MidiCloakOutcome(protected_score(score, cloak), problem, summary)


def _stats(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max())}


def check_midi_output(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that is not a MIDI file name, a folder, the input itself or an existing file."""
    if output_path.suffix.lower() not in MIDI_SUFFIXES:
        raise SettingsError(f"{output_path}: a protected MIDI file must be written as .mid or .midi")
    refuse_to_replace(input_path, output_path, overwrite, MidiFileError)


def protect_midi_file(input_path: str | Path, output_path: str | Path | None = None,
                      settings: ProtectionSettings = ProtectionSettings(), *, overwrite: bool = False,
                      write_report: bool = True, progress=None):
    """Protect one MIDI file: the original's events kept, cloak layers added; a report beside it."""
    from harmonycloak.midi_report import write_midi_report_files
    from harmonycloak.pipeline import ProtectionResult, default_output_path

    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = default_output_path(input_path, Path(output_path) if output_path else None)
    check_midi_output(input_path, output_path, overwrite)
    if settings.preview_s is not None:
        raise SettingsError("a preview is for audio; a MIDI file is protected whole")
    if settings.cloak != "dominant":
        raise SettingsError(f"the {settings.cloak} cloak is for audio; a MIDI file gets the dominant-note cloak")
    if settings.stems:
        raise SettingsError("stems are for audio; the tracks of a MIDI file are protected each with its own noise")
    score = read_midi(input_path)
    outcome = cloak_score(score, settings, progress)
    protected = outcome.protected
    if protected.source_midi is not None:
        protected.source_midi = as_type_1(protected.source_midi)  # room for the cloak layers' track chunks
    write_midi(protected, output_path)
    elapsed_s = time.perf_counter() - started
    report = {
        "input": str(input_path),
        "output": str(output_path),
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(settings).items()},
        "seed": settings.seed,
        "duration_s": score.duration_s,
        "elapsed_s": elapsed_s,
        "real_time_factor": elapsed_s / max(score.duration_s, 1e-9),
        **outcome.summary,
    }
    result = ProtectionResult(input_path, output_path, report)
    if write_report:
        clean = outcome.problem.clean_roll.cpu().numpy()
        cloaked = outcome.problem.written_roll().cpu().numpy()
        result.report_path, result.picture_path = write_midi_report_files(
            report, clean, cloaked, outcome.problem.track_names, output_path)
    return result
