"""Audio → notes → piano roll, so that the symbolic metrics (EB, UPC, QN, TD: `metrics.symbolic`)
and the style classifier (`metrics.style`) can judge what the audio models generate.

The transcriber is Basic Pitch [Bittner2022]: its ONNX model (``nmp.onnx``, shipped inside the
``basic-pitch`` wheel, 230 kB) runs on onnxruntime. Only the model file is used, not the
package's Python code (which imports TensorFlow, librosa, resampy and mir_eval); the steps
around the model are re-implemented here, following basic-pitch 0.4.0's ``inference.py`` and
``note_creation.py``:

1. resample to 22,050 Hz mono; prepend 3,840 zeros (half the overlap); cut into windows of
   43,844 samples every 36,164 (30 model frames of overlap);
2. run the model: per window 172 frames (hop 256 samples, 86.13 frames/s) × 88 piano keys of
   *note* (a pitch sounds) and *onset* (a note starts) posteriors;
3. drop 15 frames at each end of each window, concatenate, keep floor(N · 86 / 22050) frames;
4. decode notes (`decode_notes`, basic-pitch's ``output_to_notes_polyphonic``): onsets are
   local maxima over time of the onset posterior (raised by sharp rises of the note
   posterior, "inferred onsets") at least ``onset_threshold``; from each, latest first, a
   note lasts while the note posterior stays at least ``frame_threshold`` (allowing gaps of
   fewer than ``energy_tolerance_frames``); notes of at most ``min_note_frames`` are dropped;
   then (the "Melodia trick") the strongest remaining note-posterior peaks grow into notes
   without an onset. Pitch bends are not estimated.
5. events → `Score` (one track, a constant assumed tempo, 4/4) → `PianoRoll` with the
   project's own note-to-roll rule (`Score.piano_roll`).

Install: ``pip install onnxruntime`` and ``pip install --no-deps basic-pitch==0.4.0`` (the
``bench`` extra has onnxruntime; basic-pitch's TensorFlow pin is not needed), or pass the path
of ``nmp.onnx``.

Reference
---------
[Bittner2022] R. M. Bittner, J. J. Bosch, D. Rubinstein, G. Meseguer-Brocal and S. Ewert,
    "A lightweight instrument-agnostic model for polyphonic note transcription and
    multipitch estimation", ICASSP 2022.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import argrelmax

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.metrics.embeddings import resample_mono
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

MODEL_SAMPLE_RATE_HZ = 22_050
MODEL_HOP_SAMPLES = 256
WINDOW_SAMPLES = 43_844  # 2 s at 22,050 Hz less one hop
WINDOW_FRAMES = 172
OVERLAP_FRAMES = 30
FRAMES_PER_SECOND_NOMINAL = MODEL_SAMPLE_RATE_HZ // MODEL_HOP_SAMPLES  # 86, basic-pitch's ANNOTATIONS_FPS
LOWEST_PITCH = 21  # A0, the model's first key
NUM_KEYS = 88
TICKS_PER_BEAT = 480


@dataclass(frozen=True)
class TranscriptionConfig:
    """Decoding thresholds: basic-pitch 0.4.0's defaults."""

    onset_threshold: float = 0.5  # minimum onset posterior at an onset peak
    frame_threshold: float = 0.3  # minimum note posterior while a note lasts
    min_note_frames: int = 11  # notes of at most 11 frames (≈ 128 ms) are dropped
    energy_tolerance_frames: int = 11  # a note survives gaps shorter than this
    infer_onsets: bool = True  # add onsets where the note posterior jumps
    melodia_trick: bool = True  # also grow notes from strong frames without an onset


@dataclass(eq=False)
class NoteEvents:
    """Transcribed notes as parallel arrays, shape (notes,) each.

    Attributes:
        start_s, end_s: float64 seconds from the start of the audio.
        pitch: int16 MIDI key number (21..108).
        amplitude: float64 mean note posterior over the note, in [0, 1].
    """

    start_s: np.ndarray
    end_s: np.ndarray
    pitch: np.ndarray
    amplitude: np.ndarray

    def __len__(self) -> int:
        return int(self.pitch.shape[0])


def default_model_path() -> Path:
    """``nmp.onnx`` inside the installed basic-pitch package, found without importing it.

    Raises:
        ModelError: basic-pitch is not installed or its ONNX model is missing.
    """
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "Basic Pitch is not installed: pip install --no-deps basic-pitch==0.4.0 (its ONNX model is in the wheel), "
            "or pass the path of nmp.onnx"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise ModelError("the installed basic-pitch has no ONNX model; reinstall basic-pitch 0.4.0", path)
    return path


class BasicPitchTranscriber:
    """Polyphonic transcription with Basic Pitch's ONNX model (see the module docstring).

    Args:
        model_path: ``nmp.onnx``; None for `default_model_path()`.
        config: decoding thresholds.
        threads: onnxruntime intra-op threads (1 keeps it from competing with torch).

    Raises:
        ModelError: onnxruntime missing, or the model file missing or unreadable.
    """

    def __init__(self, model_path: str | Path | None = None, config: TranscriptionConfig = TranscriptionConfig(), threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("transcription needs onnxruntime: pip install 'harmonycloak[bench]'") from None
        path = default_model_path() if model_path is None else Path(model_path)
        if not path.is_file():
            raise ModelError("no such ONNX model file", path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"cannot load the ONNX model ({type(error).__name__}: {error})", path) from None
        self.input_name = self.session.get_inputs()[0].name
        self.config = config

    def posteriors(self, waveform: np.ndarray, sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
        """Note and onset posteriors of a mono waveform (samples,): two float32 (frames, 88).

        Steps 1-3 of the module docstring; frames are ``MODEL_HOP_SAMPLES`` at 22,050 Hz.
        """
        audio = resample_mono(waveform, sample_rate_hz, MODEL_SAMPLE_RATE_HZ)
        overlap_samples = OVERLAP_FRAMES * MODEL_HOP_SAMPLES
        hop_samples = WINDOW_SAMPLES - overlap_samples
        padded = np.concatenate([np.zeros(overlap_samples // 2, dtype=np.float32), audio])
        starts = range(0, len(padded), hop_samples)
        windows = np.zeros((len(starts), WINDOW_SAMPLES, 1), dtype=np.float32)
        for row, start in enumerate(starts):
            piece = padded[start:start + WINDOW_SAMPLES]
            windows[row, : len(piece), 0] = piece
        # Output names as basic-pitch's inference.py maps them: :1 note, :2 onset, :0 contour.
        note, onset = self.session.run(["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"], {self.input_name: windows})
        keep = int(np.floor(len(audio) * FRAMES_PER_SECOND_NOMINAL / MODEL_SAMPLE_RATE_HZ))
        trim = OVERLAP_FRAMES // 2

        def unwrap(output: np.ndarray) -> np.ndarray:  # (windows, 172, 88) → (frames, 88)
            return output[:, trim:-trim].reshape(-1, NUM_KEYS)[:keep]

        return unwrap(note), unwrap(onset)

    def notes(self, waveform: np.ndarray, sample_rate_hz: int) -> NoteEvents:
        """Transcribed notes of a mono waveform (samples,) in [-1, 1]."""
        note, onset = self.posteriors(waveform, sample_rate_hz)
        start, end, pitch, amplitude = decode_notes(note, onset, self.config)
        times_s = model_frames_to_seconds(note.shape[0])
        if len(start) == 0:
            return NoteEvents(np.zeros(0), np.zeros(0), np.zeros(0, np.int16), np.zeros(0))
        return NoteEvents(times_s[start], times_s[np.minimum(end, len(times_s) - 1)], pitch.astype(np.int16), amplitude)

    def transcribe(self, waveform: np.ndarray, sample_rate_hz: int, bpm: float = 120.0, program: int = 0) -> Score:
        """Transcribed notes as a one-track `Score` at a constant ``bpm`` (see `notes_to_score`)."""
        return notes_to_score(self.notes(waveform, sample_rate_hz), bpm, program)


def model_frames_to_seconds(num_frames: int) -> np.ndarray:
    """Time in seconds of each unwrapped model frame, float64 (frames,).

    As basic-pitch's ``model_frames_to_time``: frame · hop / rate, less a per-window offset
    (the windows' 172 frames span slightly more than their 43,844 samples; basic-pitch adds
    0.0018 s, "needed for this to align properly").
    """
    frames = np.arange(num_frames)
    window_offset_s = MODEL_HOP_SAMPLES / MODEL_SAMPLE_RATE_HZ * (WINDOW_FRAMES - WINDOW_SAMPLES / MODEL_HOP_SAMPLES) + 0.0018
    return frames * MODEL_HOP_SAMPLES / MODEL_SAMPLE_RATE_HZ - window_offset_s * np.floor(frames / WINDOW_FRAMES)


def decode_notes(
    note: np.ndarray, onset: np.ndarray, config: TranscriptionConfig = TranscriptionConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Note events from posteriors (frames, 88) (step 4 of the module docstring).

    Returns:
        (start_frame, end_frame, pitch, amplitude), arrays of shape (notes,): frames index the
        posteriors (end exclusive), pitch is the MIDI key, amplitude the mean note posterior.
    """
    note = np.asarray(note, dtype=np.float64)
    onset = np.asarray(onset, dtype=np.float64)
    if note.ndim != 2 or note.shape[1] != NUM_KEYS or onset.shape != note.shape:
        raise SettingsError(f"posteriors must both have shape (frames, {NUM_KEYS}); got {note.shape} and {onset.shape}")
    num_frames = note.shape[0]
    if num_frames < 2:  # no room for a note (and no maximum to rescale inferred onsets by)
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    if config.infer_onsets:
        onset = _with_inferred_onsets(onset, note)
    peaks = np.zeros_like(onset)
    peak_index = argrelmax(onset, axis=0)
    peaks[peak_index] = onset[peak_index]
    onset_frames, onset_keys = np.nonzero(peaks >= config.onset_threshold)
    remaining = note.copy()
    events: list[tuple[int, int, int, float]] = []

    def clear(start: int, end: int, key: int) -> None:  # the note and its neighbours' leakage
        remaining[start:end, max(key - 1, 0):min(key + 2, NUM_KEYS)] = 0.0

    for start, key in zip(onset_frames[::-1], onset_keys[::-1]):  # latest onset first
        if start >= num_frames - 1:
            continue
        end = _note_end(remaining, start, key, config, forward=True)
        if end - start <= config.min_note_frames:
            continue
        clear(start, end, key)
        events.append((int(start), int(end), int(key), float(note[start:end, key].mean())))
    if config.melodia_trick:
        while remaining.max(initial=0.0) > config.frame_threshold:
            middle, key = np.unravel_index(np.argmax(remaining), remaining.shape)
            remaining[middle, key] = 0.0
            end = _note_end(remaining, middle, key, config, forward=True, clearing=True)
            start = _note_end(remaining, middle, key, config, forward=False, clearing=True)
            if end - start <= config.min_note_frames:
                continue
            events.append((int(start), int(end), int(key), float(note[start:end, key].mean())))
    if not events:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    start, end, key, amplitude = (np.asarray(column) for column in zip(*events))
    order = np.lexsort((key, start))
    return start[order], end[order], key[order] + LOWEST_PITCH, amplitude[order]


def _note_end(
    remaining: np.ndarray, origin: int, key: int, config: TranscriptionConfig, forward: bool, clearing: bool = False
) -> int:
    """Walk from ``origin`` along ``key`` while the posterior stays above the frame threshold
    (gaps shorter than the tolerance allowed); return the end (exclusive, forward) or start
    (inclusive, backward). With ``clearing`` the walked frames and neighbours are zeroed, as
    the Melodia trick of basic-pitch does."""
    num_frames = remaining.shape[0]
    step = 1 if forward else -1
    frame, below = origin + step, 0
    limit = num_frames - 1 if forward else 0
    while (frame < limit if forward else frame > limit) and below < config.energy_tolerance_frames:
        below = below + 1 if remaining[frame, key] < config.frame_threshold else 0
        if clearing:
            remaining[frame, max(key - 1, 0):min(key + 2, NUM_KEYS)] = 0.0
        frame += step
    if forward:
        return frame - below if not clearing else frame - 1 - below
    return frame + 1 + below


def _with_inferred_onsets(onset: np.ndarray, note: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """Onsets raised where the note posterior rises sharply (basic-pitch's get_infered_onsets):
    the smallest rise over 1..n_diff frames, scaled to the onsets' maximum."""
    rises = []
    for n in range(1, n_diff + 1):
        shifted = np.concatenate([np.zeros((n, note.shape[1])), note])
        rises.append(shifted[n:] - shifted[:-n])
    rise = np.clip(np.min(rises, axis=0), 0.0, None)
    rise[:n_diff] = 0.0
    if rise.max() > 0:
        rise = onset.max() * rise / rise.max()
    return np.maximum(onset, rise)


def notes_to_score(events: NoteEvents, bpm: float = 120.0, program: int = 0) -> Score:
    """Note events (seconds) → a one-track 4/4 `Score` at a constant ``bpm``.

    Transcribed audio has no tempo or bar lines: the benchmark states the tempo it rendered or
    assumes (the bar of the generative models is 4 beats). Seconds become ticks (480 per
    beat); velocity = round(127 · amplitude), at least 1. Roll it with
    ``score.piano_roll(steps_per_beat).bars(steps_per_bar)``: (1, bars, steps_per_bar, 128),
    the layout of a one-track symbolic roll; compare with multi-track rolls with their
    tracks merged (``rolls.max(axis=0, keepdims=True)``), since transcription does not know
    which instrument played a note.
    """
    if bpm <= 0:
        raise SettingsError(f"bpm must be positive, not {bpm}")
    tempo = TempoMap.constant(bpm, TICKS_PER_BEAT)
    start = np.round(tempo.seconds_to_tick(events.start_s)).astype(np.int64)
    end = np.maximum(np.round(tempo.seconds_to_tick(events.end_s)).astype(np.int64), start + 1)
    velocity = np.clip(np.round(127 * np.asarray(events.amplitude)), 1, 127)
    notes = _without_same_pitch_overlaps(Notes.from_arrays(events.pitch, velocity, start, end))
    bar_ticks = 4 * TICKS_PER_BEAT
    num_bars = max(1, int(np.ceil(max(int(notes.end_tick.max(initial=0)), 1) / bar_ticks)))
    return Score(
        tracks=[Track("transcription", int(program), False, notes)],
        tempo_map=tempo,
        time_signatures=[TimeSignature(0, 4, 4)],
        bar_lines_tick=np.arange(num_bars + 1, dtype=np.int64) * bar_ticks,
    )


def _without_same_pitch_overlaps(notes: Notes) -> Notes:
    """Cut a note where the next note of the same pitch starts (one key cannot sound twice)."""
    end = notes.end_tick.copy()
    for pitch in np.unique(notes.pitch):
        index = np.flatnonzero(notes.pitch == pitch)  # sorted by start
        end[index[:-1]] = np.minimum(end[index[:-1]], notes.start_tick[index[1:]])
    keep = end > notes.start_tick
    return Notes.from_arrays(notes.pitch[keep], notes.velocity[keep], notes.start_tick[keep], end[keep])


def transcribe_to_bars(
    waveform: np.ndarray,
    sample_rate_hz: int,
    transcriber: BasicPitchTranscriber,
    bpm: float = 120.0,
    steps_per_beat: int = 4,
) -> np.ndarray:
    """Audio → piano-roll bars: float32 (1, bars, 4 · steps_per_beat, 128), velocity / 127.

    The roll of `notes_to_score` at ``steps_per_beat``, cut into 4/4 bars at the assumed
    ``bpm``: the input of `metrics.symbolic` and `metrics.style`.
    """
    score = transcriber.transcribe(waveform, sample_rate_hz, bpm)
    return score.piano_roll(steps_per_beat).bars(4 * steps_per_beat)
