"""Render a MIDI file to audio with FluidSynth and a General MIDI soundfont (both from Debian).

Used to hear what a protected MIDI file sounds like against its original (`verify`, the
tests). The FluidSynth command line is called directly (the Python binding pyfluidsynth is
not needed): reverb and chorus off, so that one file always renders to the same samples,
and gain 1.0, the gain at which `cloak.midi.MidiCloakSettings.full_velocity_db_spl` was
measured.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from harmonycloak.errors import MidiFileError

SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian fluid-soundfont-gm
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)
# pip cannot install these: a program and data of the operating system
RENDER_INSTALL_ADVICE = ("install the FluidSynth program and a General MIDI soundfont (Debian/Ubuntu: "
                         "apt install fluidsynth fluid-soundfont-gm; the soundfont is looked for at "
                         + " or ".join(str(path) for path in SOUNDFONT_CANDIDATES) + ")")


def find_soundfont() -> Path | None:
    """The first General MIDI soundfont installed, or None."""
    return next((path for path in SOUNDFONT_CANDIDATES if path.is_file()), None)


def can_render() -> bool:
    """True when the FluidSynth program and a soundfont are installed."""
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def render_midi(path: str | Path, sample_rate_hz: int = 44_100, gain: float = 1.0,
                timeout_s: float = 600.0) -> np.ndarray:
    """The audio of a MIDI file: float32 (2, frames), FluidSynth's stereo output in [-1, 1].

    Raises:
        MidiFileError: FluidSynth or the soundfont is missing, or FluidSynth fails on the file.
    """
    path = Path(path)
    soundfont = find_soundfont()
    if shutil.which("fluidsynth") is None or soundfont is None:
        raise MidiFileError(f"cannot be rendered to audio: {RENDER_INSTALL_ADVICE}", path)
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "render.wav"
        command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(sample_rate_hz),
                   "-F", str(wav), str(soundfont), str(path)]
        done = subprocess.run(command, capture_output=True, timeout=timeout_s)
        if done.returncode != 0 or not wav.is_file():
            raise MidiFileError(f"FluidSynth could not render it ({done.stderr.decode(errors='replace').strip()[:200]})",
                                path)
        samples, _ = soundfile.read(wav, dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.T)
