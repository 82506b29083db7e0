"""From a MIDI file to a protected MIDI file: read, cloak, write, report.

    score = read_midi(song.mid)                       # bad MIDI: one-line MidiFileError
    surrogates = the white-box model (MuseGAN or SymphonyNet, a checkpoint or in memory)
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

from harmonycloak.cloak.midi import MidiCloakSettings, MidiDominantCloak, protected_score
from harmonycloak.cloak.midi_problem import MidiCloakProblem
from harmonycloak.cloak.model_input import longest_bar_steps, score_instruments
from harmonycloak.errors import MidiFileError, ModelError, SettingsError
from harmonycloak.flows.midi.report import write_midi_report_files
from harmonycloak.flows.results import ProgressCallback, ProtectionResult
from harmonycloak.io.atomic import refuse_to_replace
from harmonycloak.io.midi import MIDI_SUFFIXES, as_type_1, read_midi, write_midi
from harmonycloak.io.paths import default_output_path
from harmonycloak.models.bag import build_musegan_bag, musegan_bag_phrase
from harmonycloak.models.interface import PhraseLayout, SymbolicModel, is_symbolic_model
from harmonycloak.music import Score
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.optim.objectives import build_objective
from harmonycloak.settings import MIDI_OBJECTIVES, PAPER_ALPHA, ProtectionSettings, headroom_db, resolve_device
from harmonycloak.zoo.store import load_named_model

FAMILY_KIND = {"musegan": "gan", "symphonynet": "transformer"}  # which of the paper's α each family takes


@dataclass
class MidiSurrogates:
    """The models the noise is optimised against, and the phrases they read."""

    models: list[SymbolicModel]
    family: str  # "musegan" or "symphonynet"
    layout: PhraseLayout


def blackbox_layout(score: Score, tiny: bool) -> PhraseLayout:
    """The phrases the black-box MuseGAN bag reads for ``score``: a bar longer than 4/4 (6/4, 12/8)
    gets a slot of whole multiples of the bag's nominal one."""
    nominal = musegan_bag_phrase(tracks=1, tiny=tiny)
    longest = longest_bar_steps(score, nominal.steps_per_bar // 4)
    return PhraseLayout(nominal.steps_per_bar * -(-longest // nominal.steps_per_bar), nominal.bars)


def build_midi_surrogates(score: Score, settings: ProtectionSettings, device: torch.device) -> MidiSurrogates:
    """White-box: the model, checked against the score; black-box: the MuseGAN bag for its tracks."""
    num_tracks = int(score_instruments(score).max()) + 1  # the models' rows: one per instrument
    if settings.mode == "whitebox":
        model = settings.model if settings.model is not None else load_named_model(settings.model_checkpoint)
        source = settings.model_checkpoint if settings.model is None else None
        if not is_symbolic_model(model):
            raise ModelError("this model is an audio model; use it with an audio file", source)
        if model.num_tracks != num_tracks:
            raise ModelError(f"the model reads {model.num_tracks} tracks but {score.source_path or 'the score'} has "
                             f"{num_tracks}", source)
        if model.phrase_layout.steps_per_bar % 4:
            raise ModelError(f"the model's bars of {model.phrase_layout.steps_per_bar} steps are not 4 beats of "
                             "whole steps", source)
        return MidiSurrogates([model.to(device)], model.family, model.phrase_layout)
    tiny = settings.model_preset == "tiny"
    layout = blackbox_layout(score, tiny)
    bag = build_musegan_bag(settings.bag_size, settings.seed, tiny=tiny,
                            phrase=musegan_bag_phrase(num_tracks, tiny, layout.steps_per_bar))
    return MidiSurrogates([model.to(device) for model in bag], "musegan", layout)


@dataclass
class MidiCloakOutcome:
    protected: Score  # the score with its cloak layers
    problem: MidiCloakProblem
    summary: dict


def cloak_score(score: Score, settings: ProtectionSettings, progress: ProgressCallback | None = None,
                *, surrogates: MidiSurrogates | None = None) -> MidiCloakOutcome:
    """Optimise the MIDI cloak of ``score`` against the surrogates the settings name (or `surrogates`:
    the benchmark's bags that leave the attacker's architecture out)."""
    device = resolve_device(settings.device)
    settings = settings.resolved("midi")
    generator = torch.Generator().manual_seed(settings.seed)
    surrogates = build_midi_surrogates(score, settings, device) if surrogates is None else surrogates
    cloak_settings = MidiCloakSettings(window_ms=settings.window_ms, headroom_db=headroom_db("midi", settings.strength))
    layout = surrogates.layout
    cloak = MidiDominantCloak(score, layout.steps_per_beat, cloak_settings)
    if cloak.num_runs == 0:
        raise MidiFileError("has no pitched note loud and long enough to hide noise under (drums get none)",
                            score.source_path)
    longest = longest_bar_steps(score, layout.steps_per_beat)
    if longest > layout.steps_per_bar:
        raise MidiFileError(f"has a bar of {longest} steps, longer than the {layout.steps_per_bar} steps of the "
                            "model's bars", score.source_path)
    problem = MidiCloakProblem(score, cloak, layout).to(device)
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
    objective = build_objective(settings.objective, settings.mode, settings.seed)
    history = optimise_noise(problem, models, config, generator, progress, objective)
    after = losses()
    velocity = cloak.quantised_velocity()
    below_db = 40.0 * np.log10(cloak.runs.note_velocity / np.maximum(velocity, 1))
    names = [track.name or f"track {index + 1}" for index, track in enumerate(score.tracks)]
    summary = {
        "kind": "midi",
        "objective": objective.name,
        "device": str(device),
        "surrogates": [surrogates.family] * len(models),
        "alpha": alpha,
        "steps_per_beat": layout.steps_per_beat,
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
                      write_report: bool = True, picture: bool = True,
                      progress: ProgressCallback | None = None) -> ProtectionResult:
    """Protect one MIDI file: the original's events kept, cloak layers added; a report beside it
    (`write_report`), with its picture (`picture`)."""
    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = default_output_path(input_path, Path(output_path) if output_path else None)
    check_midi_output(input_path, output_path, overwrite)
    settings = settings.resolved("midi")
    if settings.preview_s is not None:
        raise SettingsError("a preview is for audio; a MIDI file is protected whole")
    if settings.cloak != "dominant":
        raise SettingsError(f"the {settings.cloak} cloak is for audio; a MIDI file gets the dominant-note cloak")
    if settings.objective not in MIDI_OBJECTIVES:
        raise SettingsError(f"the {settings.objective} objective is for audio; a MIDI file takes "
                            f"{' or '.join(f'--objective {name}' for name in MIDI_OBJECTIVES)}")
    if settings.stems:
        raise SettingsError("stems are for audio; the tracks of a MIDI file are protected each with its own noise")
    if settings.eot:
        raise SettingsError("optimising against audio purifications (--eot) is for audio; a MIDI file has no codec")
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
        "settings": settings.as_report(),
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
            report, clean, cloaked, outcome.problem.track_names, output_path, picture)
    return result
