"""The benchmark's music: corpus pieces rendered to audio, and real recordings, as mono songs.

* Symbolic: pieces of the music21 corpus (`harmonycloak.corpus`): Bach chorales and other
  composers (Palestrina, Monteverdi, Essen folk songs), each piece a "song" of one "artist".
* The same pieces rendered to audio with FluidSynth and a General MIDI soundfont
  (`io.render`) at 16 kHz mono (paper §5.1), every part on one GM program so that timbre does
  not give the composer away.
* Real recordings: the orchestral tracks of Debian's wesnoth-1.16-music when installed,
  otherwise the example song that ships with the project, cut into clips.

Every song is `song_s` long (a whole number of the optimiser's segments), peak-normalised.
Renderings and decoded clips are cached under the corpus cache folder, keyed by what made them.

Shapes: N samples.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harmonycloak.errors import SettingsError
from harmonycloak.examples import example_path
from harmonycloak.io.render import find_soundfont, render_midi
from harmonycloak.resampling import to_working_rate
from harmonycloak.settings import WORKING_RATE_HZ
WESNOTH_MUSIC_FOLDERS = (Path("/usr/share/games/wesnoth/1.16/data/core/music"),)
# The recorded artist whose album the style-mimicry threat protects: Debian's planetblupi-music-ogg,
# reserved for the benchmark (the zoo never trains on it).
ALBUM_FOLDERS = {"planetblupi": (Path("/usr/share/planetblupi/music"),)}
EXAMPLE_SONG = example_path()
PEAK_LEVEL = 0.5  # songs are scaled to this peak (−6 dBFS): room for noise, no clipping
SILENCE_LEVEL = 0.01  # a rendered piece starts at its first sample above this (skips FluidSynth's lead-in)
RENDER_GAIN = 0.5  # FluidSynth's gain: dense four-part pieces stay under full scale (songs are peak-normalised after)


@dataclass(frozen=True)
class Song:
    """One song of the benchmark.

    Attributes:
        name: where it comes from ("bach/bwv1.6.mxl", "wesnoth/battle.ogg@30.0s").
        artist: who made it ("bach", "palestrina", "wesnoth", ...): the style experiment's label.
        kind: "rendered" (corpus piece through FluidSynth) or "recording".
        samples: float32 (N,) mono at the benchmark's rate, peak `PEAK_LEVEL`.
    """

    name: str
    artist: str
    kind: str
    samples: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class DataSpec:
    """What songs a suite uses."""

    pieces_per_composer: tuple[tuple[str, int], ...] = (("bach", 8), ("palestrina", 4), ("monteverdi", 4), ("essen", 4))
    recordings: int = 6  # wesnoth clips (or example-song clips when wesnoth is missing)
    song_s: float = 5.12  # length of every song (2 segments of 2.56 s)
    sample_rate_hz: int = WORKING_RATE_HZ  # paper §5.1: 16 kHz mono
    gm_program: int = 0  # General MIDI program every rendered part is played on (0 = piano)


@dataclass(frozen=True)
class AlbumSpec:
    """The artist of the style-mimicry threat: its tracks, sorted by name, the first `released_tracks`
    released (and protected), the next `unreleased_tracks` kept back (never released, never
    trained on: what the artist writes next)."""

    artist: str = "planetblupi"
    released_tracks: int = 6
    unreleased_tracks: int = 4
    clips_per_track: int = 2  # clips of `DataSpec.song_s` from the middle of each track


@dataclass
class Album:
    released: list[Song]
    unreleased: list[Song]


def load_album(spec: AlbumSpec, data: DataSpec, cache_dir: Path | None = None) -> Album:
    """The artist's clips, split into released and unreleased tracks (fixed, no randomness)."""
    cache = _cache_folder(cache_dir)
    paths = sorted(p for folder in ALBUM_FOLDERS.get(spec.artist, ()) for p in folder.glob("*.ogg"))
    needed = spec.released_tracks + spec.unreleased_tracks
    if spec.artist not in ALBUM_FOLDERS or len(paths) < needed:
        raise SettingsError(f"the benchmark's artist '{spec.artist}' needs {needed} recordings, found {len(paths)} "
                            "(install Debian's planetblupi-music-ogg: bash setup.sh --bench)")
    songs = [_recording_clips(path, spec.artist, spec.clips_per_track, data, cache) for path in paths[:needed]]
    return Album([s for track in songs[: spec.released_tracks] for s in track],
                 [s for track in songs[spec.released_tracks:] for s in track])


def recording_paths() -> list[Path]:
    """Wesnoth's recordings if installed, sorted; else [the example song]."""
    for folder in WESNOTH_MUSIC_FOLDERS:
        paths = sorted(folder.glob("*.ogg"))
        if paths:
            return paths
    return [EXAMPLE_SONG]


def load_songs(spec: DataSpec, cache_dir: Path | None = None) -> list[Song]:
    """Rendered corpus pieces then recording clips, in a fixed order (no randomness here)."""
    cache = _cache_folder(cache_dir)
    songs = []
    for composer, count in spec.pieces_per_composer:
        songs.extend(rendered_songs(composer, count, spec, cache))
    songs.extend(recording_songs(spec.recordings, spec, cache))
    return songs


def rendered_songs(composer: str, count: int, spec: DataSpec, cache: Path) -> list[Song]:
    """The first `count` pieces of a corpus collection, each rendered and cut to `song_s`."""
    from harmonycloak.corpus import load_collection

    if count <= 0:
        return []
    pieces, limit = [], count
    while len(pieces) < count:  # some files are skipped (a Bach score that is not a chorale)
        pieces = [p for p in load_collection(composer, limit=limit) if len(p.score.tracks) and p.score.num_notes]
        if limit > 8 * count + 16:
            break
        limit *= 2
    songs = []
    for piece in pieces:
        key = _key("render", piece.name, spec.song_s, spec.sample_rate_hz, spec.gm_program, RENDER_GAIN,
                   _soundfont_name())
        samples = _cached(cache / f"{key}.npy", lambda: _render_piece(piece.score, spec))
        if samples is not None:
            songs.append(Song(piece.name, composer, "rendered", samples))
        if len(songs) == count:
            break
    if len(songs) < count:
        raise SettingsError(f"the corpus holds only {len(songs)} usable {composer} pieces of at least "
                            f"{spec.song_s} s; the suite asks for {count}")
    return songs


def recording_songs(count: int, spec: DataSpec, cache: Path) -> list[Song]:
    """`count` clips of `song_s`: one from the middle of each recording, more per file if there are few files."""
    if count <= 0:
        return []
    paths = recording_paths()
    per_file = -(-count // len(paths))
    songs = []
    for path in paths:
        songs.extend(_recording_clips(path, "wesnoth" if path != EXAMPLE_SONG else "example", per_file, spec, cache))
        if len(songs) >= count:
            break
    return songs[:count]


def _recording_clips(path: Path, artist: str, count: int, spec: DataSpec, cache: Path) -> list[Song]:
    """`count` clips of one recording (cached), as songs named after it."""
    key = _key("clip", str(path), path.stat().st_size, spec.song_s, spec.sample_rate_hz, count)
    clips = _cached(cache / f"{key}.npy", lambda: _clip_recording(path, count, spec))
    return [Song(f"{artist}/{path.name}#{index}", artist, "recording", clip) for index, clip in enumerate(clips)]


def _cache_folder(cache_dir: Path | None) -> Path:
    from harmonycloak.corpus.cache import default_cache_dir

    cache = cache_dir or default_cache_dir().parent / "bench-audio"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _soundfont_name() -> str:
    soundfont = find_soundfont()
    if soundfont is None:
        raise SettingsError("no General MIDI soundfont found (install Debian's fluid-soundfont-gm: bash setup.sh --bench)")
    return soundfont.name


def _render_piece(score, spec: DataSpec) -> np.ndarray | None:
    """Score → (N,) at the spec's rate, from the first sound, `song_s` long; None if shorter."""
    from harmonycloak.io.midi import write_midi

    score = replace(score, tracks=[replace(t, program=spec.gm_program, is_drum=False) for t in score.tracks],
                    source_midi=None)
    with tempfile.TemporaryDirectory(prefix="harmonycloak-render-") as folder:
        midi_path = Path(folder) / "piece.mid"
        write_midi(score, midi_path)
        mono = render_midi(midi_path, spec.sample_rate_hz, gain=RENDER_GAIN).mean(axis=0)
    loud = np.flatnonzero(np.abs(mono) > SILENCE_LEVEL * max(float(np.abs(mono).max()), 1e-9))
    if loud.size == 0:
        return None
    length = round(spec.song_s * spec.sample_rate_hz)
    clip = mono[loud[0] : loud[0] + length]
    return _normalised(clip) if clip.shape[0] == length else None


def _clip_recording(path: Path, count: int, spec: DataSpec) -> np.ndarray:
    """`count` clips (count, N) spread evenly over the middle of the recording, mono at the spec's rate."""
    from harmonycloak.io.audio import read_audio

    audio = read_audio(path)
    mono = to_working_rate(audio.samples.mean(axis=0), audio.sample_rate_hz, spec.sample_rate_hz)
    length = round(spec.song_s * spec.sample_rate_hz)
    if mono.shape[0] < length:
        raise SettingsError(f"the recording is shorter than one {spec.song_s} s song", path)
    starts = np.linspace(0.1 * (mono.shape[0] - length), 0.9 * (mono.shape[0] - length), count + 2)[1:-1]
    return np.stack([_normalised(mono[int(s) : int(s) + length]) for s in starts])


def _normalised(clip: np.ndarray) -> np.ndarray:
    return (clip * (PEAK_LEVEL / max(float(np.abs(clip).max()), 1e-9))).astype(np.float32)


def _key(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def _cached(path: Path, make):
    """np.load(path) if present, else make(), saved there (None results are saved as an empty array)."""
    if path.is_file():
        stored = np.load(path)
        return None if stored.size == 0 else stored
    value = make()
    np.save(path, np.zeros(0, np.float32) if value is None else value)
    return value
