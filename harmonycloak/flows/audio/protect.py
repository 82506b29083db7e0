"""From a song to a protected song: read, cloak, write, report.

`cloak_tracks` is the core on arrays: clean tracks in, one noise per track out. The file
functions around it add what a musician needs: formats and tags kept, previews, silent
input passed through, outputs written atomically, and a report per output.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from harmonycloak.cloak.band_check import held_to_band_check
from harmonycloak.cloak.dominant import DominantToneCloak, DominantToneSettings
from harmonycloak.cloak.gain import GainModulationCloak, GainModulationSettings
from harmonycloak.cloak.loudness import loudness_neutral
from harmonycloak.cloak.masked import MaskedSpectrumCloak, MaskedSpectrumSettings
from harmonycloak.cloak.problem import AudioCloak, AudioCloakProblem, SongsProblem
from harmonycloak.cloak.stacked import StackedCloak
from harmonycloak.errors import AudioFileError, ModelError
from harmonycloak.flows.audio.report import MaskingExcerpt, audio_report, write_report_files
from harmonycloak.flows.results import ProgressCallback, ProtectionResult
from harmonycloak.io.atomic import atomic_output
from harmonycloak.io.audio import audio_format_for_path, check_output_path, read_audio, write_audio
from harmonycloak.io.paths import default_output_path
from harmonycloak.memory import release_freed_memory
from harmonycloak.models.bag import build_audio_bag
from harmonycloak.models.interface import GenerativeModel, is_audio_model
from harmonycloak.music import Audio
from harmonycloak.optim.eot import Transformations
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.optim.objectives import build_objective
from harmonycloak.resampling import to_working_rate
from harmonycloak.safeguards import check_long_enough, limit_to_source_range
from harmonycloak.settings import (GAIN_CLOAKS, MASKED_CLOAKS, PAPER_ALPHA, ZOO_SURROGATES, ProtectionSettings,
                                  max_gain_db, resolve_device)
from harmonycloak.zoo.store import load_named_model

SILENCE_PEAK_DBFS = -90.0  # a file whose peak stays under this holds nothing to protect


@dataclass
class CloakOutcome:
    """Noise per track at the input's rate, and what the optimisation did."""

    noises: list[np.ndarray]  # one (channels, frames) float32 array per track
    summary: dict = field(default_factory=dict)


def build_surrogates(settings: ProtectionSettings, device: torch.device) -> list[GenerativeModel]:
    """The model(s) the noise is optimised against: the white-box model (in memory or a checkpoint);
    black-box, the objective's: the bag of random surrogates (minmin, unless `surrogates` is
    "zoo"), the zoo's pretrained models (`ZOO_SURROGATES`), or none (future-cue)."""
    settings = settings.resolved("audio")
    if settings.objective == "future-cue":
        return []
    if settings.mode == "whitebox":
        model = settings.model if settings.model is not None else load_named_model(settings.model_checkpoint)
        source = settings.model_checkpoint if settings.model is None else None
        if not is_audio_model(model):
            raise ModelError("this model is not an audio model; use it with a MIDI file", source)
        if model.sample_rate_hz != settings.working_rate_hz:
            raise ModelError(f"the model hears {model.sample_rate_hz} Hz audio but the working rate is "
                             f"{settings.working_rate_hz} Hz", source)
        models = [model]
    elif settings.objective != "minmin" or settings.surrogates == "zoo" or settings.zoo_models:
        from harmonycloak.zoo import load_zoo_model

        models = [load_zoo_model(name) for name in settings.zoo_models or ZOO_SURROGATES[settings.objective]]
        for name, model in zip(settings.zoo_models or (), models):
            if not is_audio_model(model):
                raise ModelError(f"the zoo model '{name}' is not an audio model; audio is protected against audio models")
    else:
        models = build_audio_bag(settings.bag_size, settings.seed, tiny=settings.model_preset == "tiny")
    return [m.to(device) for m in models]


CloakFactory = Callable[[torch.Tensor, int, torch.Generator], AudioCloak]


def build_cloak(lanes: torch.Tensor, settings: ProtectionSettings, generator: torch.Generator) -> AudioCloak:
    """The cloak `settings.cloak` names, on clean lanes (L, N) at the working rate."""
    if settings.cloak == "dominant":
        return DominantToneCloak(lanes, settings.working_rate_hz,
                                 DominantToneSettings(window_ms=settings.window_ms, headroom_db=settings.headroom_db))
    parts: list[AudioCloak] = []  # "masked-gain": both, summed (`cloak.stacked`)
    if settings.cloak in MASKED_CLOAKS:
        parts.append(MaskedSpectrumCloak(lanes, settings.working_rate_hz,
                                         MaskedSpectrumSettings(headroom_db=settings.headroom_db,
                                                                bound_rule=settings.bound_rule), generator=generator))
    if settings.cloak in GAIN_CLOAKS:
        gain_settings = GainModulationSettings(max_gain_db=max_gain_db(settings.cloak, settings.strength))
        parts.append(GainModulationCloak(lanes, settings.working_rate_hz, gain_settings, generator=generator))
    return parts[0] if len(parts) == 1 else StackedCloak(parts)


def cloak_tracks(
    tracks: list[np.ndarray], sample_rate_hz: int, settings: ProtectionSettings, progress: ProgressCallback | None = None,
    *, surrogates: list[GenerativeModel] | None = None, cloak_factory: CloakFactory | None = None,
) -> CloakOutcome:
    """Optimise the noise for clean tracks (each (channels, frames), one rate, one length).

    `surrogates` replaces the models `settings` names (the benchmark's bags that leave the
    attacker's family out); `cloak_factory(lanes (L, N), working_rate_hz, generator)` replaces
    the cloak `settings.cloak` names (the benchmark's unshaped L2/L∞ baselines).
    """
    return cloak_songs([tracks], [sample_rate_hz], settings, progress, surrogates=surrogates,
                       cloak_factory=cloak_factory)[0]


def cloak_songs(
    songs: list[list[np.ndarray]], sample_rates_hz: list[int], settings: ProtectionSettings,
    progress: ProgressCallback | None = None, *, surrogates: list[GenerativeModel] | None = None,
    cloak_factory: CloakFactory | None = None,
) -> list[CloakOutcome]:
    """Optimise the noise of several songs in one optimisation (`cloak_tracks` per song, batched).

    `songs[g]` holds song g's clean tracks (each (channels, frames), one rate, one length) at
    `sample_rates_hz[g]`. With one song this is `cloak_tracks`. With G songs every PGD batch holds
    G times the segments of one song's, mixed across the songs (`cloak.problem.SongsProblem`), so
    each song gets about as many steps as alone while the models run once for the G songs; the
    surrogates learn all G songs between rounds, and a song's noise depends on the songs beside it.
    """
    settings = settings.resolved("audio")
    device = resolve_device(settings.device)
    generator = torch.Generator().manual_seed(settings.seed)
    factory = cloak_factory or (lambda clean, _rate, random: build_cloak(clean, settings, random))
    band_check_db = settings.band_check_db if cloak_factory is None else None  # a factory's cloak has bounds of its own
    problems, music = [], []  # music: each song's lanes at its own rate, (L, frames)
    for tracks, sample_rate_hz in zip(songs, sample_rates_hz, strict=True):
        lanes_in = tracks[0] if len(tracks) == 1 else np.concatenate(tracks, axis=0)
        music.append(lanes_in)
        lane_track = torch.tensor([t for t, track in enumerate(tracks) for _ in range(track.shape[0])], device=device)
        problems.append(_song_problem(lanes_in, sample_rate_hz, lane_track, settings, factory, generator, device))
    problem = problems[0] if len(problems) == 1 else SongsProblem(problems)
    surrogates = build_surrogates(settings, device) if surrogates is None else [m.to(device) for m in surrogates]
    alpha = PAPER_ALPHA["audio"] if settings.alpha is None else settings.alpha
    config = MinMinConfig(mode=settings.mode, pgd_steps=settings.pgd_steps, alpha=alpha,
                          max_rounds=settings.max_rounds, models_per_round=settings.models_per_round,
                          batch_segments=MinMinConfig.batch_segments * len(songs))

    objective = build_objective(settings.objective, settings.mode, settings.seed)
    transform = Transformations(settings.eot, settings.working_rate_hz, settings.seed) if settings.eot else None

    def losses(song: AudioCloakProblem) -> dict[str, float]:
        if settings.objective != "minmin":
            return {}  # the objective's own loss is in the rounds (`protected_loss`)
        return {
            "clean": mean_generative_loss(surrogates, song.clean_batch, song.num_segments),
            "protected": mean_generative_loss(surrogates, lambda ids: song.protected_batch(ids)[0], song.num_segments),
        }

    before = [losses(song) for song in problems]
    release_freed_memory()  # what building the cloaks freed (a long song's masking thresholds)
    history = optimise_noise(problem, surrogates, config, generator, progress, objective, transform)
    outcomes = []
    for tracks, sample_rate_hz, song, loss_before, lanes_in in zip(songs, sample_rates_hz, problems, before, music):
        noise = written_noise(song.cloak, lanes_in, sample_rate_hz, band_check_db)
        noises, first = [], 0
        for track in tracks:
            noises.append(noise[first : first + track.shape[0]])
            first += track.shape[0]
        summary = {
            "device": str(device),
            "objective": settings.objective,
            "surrogates": [m.family for m in surrogates],
            "surrogate_loss_before": loss_before,
            "surrogate_loss_after": losses(song),
            "rounds": asdict(history),
            "segments": song.num_segments,
            "windows_with_noise_share": song.cloak.active_share(),
        }
        if transform is not None:
            summary["eot_draws"] = dict(transform.draws)  # batches each purification (or none) stood in for
        if len(songs) > 1:
            summary["songs_optimised_together"] = len(songs)
        outcomes.append(CloakOutcome(noises, summary))
    return outcomes


def _song_problem(lanes_in: np.ndarray, sample_rate_hz: int, lane_track: torch.Tensor, settings: ProtectionSettings,
                  factory: CloakFactory, generator: torch.Generator, device: torch.device) -> AudioCloakProblem:
    """A song's lanes (L, frames) at the working rate, its cloak and its problem; the problem keeps
    its own padded copy of the lanes, and the one made here is freed on return (a long song's is large)."""
    lanes = torch.from_numpy(to_working_rate(lanes_in, sample_rate_hz, settings.working_rate_hz)).to(device)
    cloak = factory(lanes, settings.working_rate_hz, generator).to(device)
    return AudioCloakProblem(lanes, lane_track, cloak, settings.segment_s)


def written_noise(cloak: AudioCloak, music: np.ndarray, sample_rate_hz: int,
                  band_check_db: float | None = None) -> np.ndarray:
    """The cloak's noise as it is added to `music` ((L, frames) at `sample_rate_hz`): rendered at
    the music's rate, loudness-neutral where the cloak keeps loudness (`cloak.loudness`), and held
    under `band_check_db` of band NMR where that is given (`cloak.band_check`); (L, frames) float32."""
    release_freed_memory()  # what the optimisation freed, before the song-length arrays below
    with torch.no_grad():
        noise = cloak.render(sample_rate_hz, music.shape[-1])
    if cloak.keeps_loudness:
        noise = loudness_neutral(noise, music, sample_rate_hz, out=noise)
    if band_check_db is not None:
        noise = held_to_band_check(noise, music, sample_rate_hz, band_check_db, out=noise)
    return noise


def is_silent(samples: np.ndarray) -> bool:
    return samples.size == 0 or float(np.max(np.abs(samples))) < 10 ** (SILENCE_PEAK_DBFS / 20)


def preview_excerpt(audio: Audio, preview_s: float) -> Audio:
    """The `preview_s` seconds around the middle of the song (all of it if shorter)."""
    length = min(round(preview_s * audio.sample_rate_hz), audio.num_frames)
    first = (audio.num_frames - length) // 2
    return replace(audio, samples=audio.samples[:, first : first + length])


@dataclass
class SongToProtect:
    """An audio file read and checked, ready to be cloaked (`read_song_to_protect`)."""

    input_path: Path
    output_path: Path
    audio: Audio  # the whole song, or its preview excerpt
    started_s: float  # time.perf_counter() when its reading began


def read_song_to_protect(input_path: str | Path, output_path: str | Path | None, settings: ProtectionSettings,
                         overwrite: bool = False) -> SongToProtect | ProtectionResult:
    """Check the paths, read the song (its preview excerpt with `preview_s`) and check its length;
    a silent file has nothing to protect: it is passed through here and its result comes back."""
    started = time.perf_counter()
    input_path = Path(input_path)
    output_path = default_output_path(input_path, Path(output_path) if output_path else None, settings.preview_s is not None)
    _check_paths(input_path, output_path, overwrite)
    audio = read_audio(input_path)
    if settings.preview_s is not None:
        audio = preview_excerpt(audio, settings.preview_s)
    if is_silent(audio.samples):
        warnings.warn(f"{input_path}: the file is silent; nothing needed protecting, it was copied unchanged",
                      stacklevel=2)
        if settings.preview_s is None:
            _copy_atomically(input_path, output_path)
        else:
            write_audio(audio, output_path, tags_from=input_path)
        return ProtectionResult(input_path, output_path, {"input": str(input_path), "output": str(output_path),
                                                          "silent": True})
    check_long_enough(audio, settings.window_ms)
    return SongToProtect(input_path, output_path, audio, started)


def protect_songs(
    songs: list[SongToProtect],
    settings: ProtectionSettings,
    *,
    write_report: bool = True,
    picture: bool = True,
    progress: ProgressCallback | None = None,
    surrogates: Callable[[], list[GenerativeModel]] | None = None,
) -> list[ProtectionResult]:
    """Cloak songs in one optimisation (`cloak_songs`), then write each with its report.

    A song's `elapsed_s` is the group's time from the first reading on, shared equally.
    """
    settings = settings.resolved("audio")
    tracks = [[song.audio.samples[c : c + 1] for c in range(song.audio.num_channels)] if settings.stems
              else [song.audio.samples] for song in songs]
    outcomes = cloak_songs(tracks, [song.audio.sample_rate_hz for song in songs], settings, progress,
                           surrogates=surrogates() if surrogates is not None else None)
    protected_songs = []
    for song, outcome in zip(songs, outcomes):
        protected = outcome.noises[0] if len(outcome.noises) == 1 else np.concatenate(outcome.noises, axis=0)
        protected += song.audio.samples  # in place: the noise array becomes the protected audio
        limit_to_source_range(protected, song.audio.samples)
        write_audio(replace(song.audio, samples=protected), song.output_path, tags_from=song.input_path)
        protected_songs.append(protected)
    elapsed_s = (time.perf_counter() - min(song.started_s for song in songs)) / len(songs)

    results = []
    for song, outcome, protected in zip(songs, outcomes, protected_songs):
        audio = song.audio
        masking = MaskingExcerpt.of(audio.samples, protected, audio.sample_rate_hz)
        report = audio_report(song.input_path, song.output_path, settings, audio.samples, protected,
                              audio.sample_rate_hz, outcome.summary, elapsed_s, masking)
        result = ProtectionResult(song.input_path, song.output_path, report)
        if write_report:
            result.report_path, result.picture_path = write_report_files(report, masking, song.output_path, picture)
        results.append(result)
    return results


def protect_audio_file(
    input_path: str | Path,
    output_path: str | Path | None = None,
    settings: ProtectionSettings = ProtectionSettings(),
    *,
    overwrite: bool = False,
    write_report: bool = True,
    picture: bool = True,
    progress: ProgressCallback | None = None,
    surrogates: Callable[[], list[GenerativeModel]] | None = None,
) -> ProtectionResult:
    """Protect one audio file; the output keeps its format, rate, channels, length and tags.

    `write_report` writes the JSON report beside the output, and `picture` its picture too.
    `surrogates()`, when given, returns the models the settings name, untrained (a batch
    builds them once and hands each file a copy); by default they are built here.
    """
    song = read_song_to_protect(input_path, output_path, settings, overwrite)
    if isinstance(song, ProtectionResult):
        return song
    return protect_songs([song], settings, write_report=write_report, picture=picture, progress=progress,
                         surrogates=surrogates)[0]


def _check_paths(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse, before any work, file types we cannot read or write and outputs that would clobber."""
    if input_path.is_file():
        audio_format_for_path(input_path)
    audio_format_for_path(output_path)
    check_output_path(input_path, output_path, overwrite)


def _copy_atomically(source: Path, destination: Path) -> None:
    try:
        with atomic_output(destination) as temporary:
            shutil.copyfile(source, temporary)
    except OSError as error:
        raise AudioFileError(f"cannot write the output ({error.strerror})", destination) from error


def protect_stems(
    input_paths: list[str | Path],
    output_folder: str | Path | None = None,
    settings: ProtectionSettings = ProtectionSettings(),
    *,
    overwrite: bool = False,
    write_report: bool = True,
    picture: bool = True,
    progress: ProgressCallback | None = None,
) -> list[ProtectionResult]:
    """Protect the stems of one song together: noise per stem, weighted by w^m, optimised on their mix.

    Stems must share sample rate and length; each is written in its own format beside it
    (or into `output_folder`).
    """
    started = time.perf_counter()
    settings = settings.resolved("audio")
    paths = [Path(p) for p in input_paths]
    folder = Path(output_folder) if output_folder else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    outputs = [default_output_path(p, folder, settings.preview_s is not None) for p in paths]
    for path, output in zip(paths, outputs):
        _check_paths(path, output, overwrite)
    audios = [read_audio(p) for p in paths]
    for path, audio in zip(paths[1:], audios[1:]):
        if audio.sample_rate_hz != audios[0].sample_rate_hz:
            raise AudioFileError(f"is at {audio.sample_rate_hz} Hz but the first stem is at "
                                 f"{audios[0].sample_rate_hz} Hz; stems must share one sample rate", path)
        if audio.num_frames != audios[0].num_frames:
            raise AudioFileError(f"lasts {audio.duration_s:.3f} s but the first stem lasts {audios[0].duration_s:.3f} s; "
                                 "stems must have the same length", path)
    if settings.preview_s is not None:
        audios = [preview_excerpt(a, settings.preview_s) for a in audios]
    if all(is_silent(a.samples) for a in audios):
        raise AudioFileError("every stem is silent; nothing needs protecting", paths[0])
    check_long_enough(audios[0], settings.window_ms)
    outcome = cloak_tracks([a.samples for a in audios], audios[0].sample_rate_hz, settings, progress)
    elapsed_s = time.perf_counter() - started
    results = []
    for path, output, audio, noise in zip(paths, outputs, audios, outcome.noises):
        protected = limit_to_source_range((audio.samples + noise).astype(np.float32), audio.samples)
        write_audio(replace(audio, samples=protected), output, tags_from=path)
        masking = MaskingExcerpt.of(audio.samples, protected, audio.sample_rate_hz)
        report = audio_report(path, output, settings, audio.samples, protected, audio.sample_rate_hz,
                              {**outcome.summary, "stems": [str(p) for p in paths]}, elapsed_s, masking)
        result = ProtectionResult(path, output, report)
        if write_report:
            result.report_path, result.picture_path = write_report_files(report, masking, output, picture)
        results.append(result)
    return results
