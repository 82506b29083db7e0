"""What a careful trainer does to downloaded music before training on it: purification attacks.

Each attack is a pure function

    attack(samples: (N,) float32 mono, sample_rate_hz: int, seed: int = 0) -> (N,) float32

that returns the same number of samples, lined up with the input sample for sample (codec
delays and resampling filters leave no shift). Attacks that draw random numbers draw them from
``seed`` only; the others ignore it. `ATTACKS` names them (a plain dict):

  mp3-128k              an MP3 at 128 kbps, encoded by LAME at 44.1 kHz as a musician releases it
  aac-128k              AAC at 128 kbps in an M4A file at 44.1 kHz (what online stores sell)
  opus-96k              Ogg Opus at 96 kbps (Opus codes at 48 kHz whatever its input)
  resample-22k          down to 22.05 kHz and back: nothing above 11.025 kHz survives
  denoise-spectral      spectral subtraction of a noise floor learnt from the quietest frames
  purify-noise-lowpass  Gaussian noise at 30 dB SNR, then a low-pass at 6 kHz

Every codec goes through `harmonycloak.io.audio` (write_audio, then read_audio of a temporary
file), and every change of rate through `harmonycloak.resampling`, so an attack hears exactly
what a file released by the product would give. Samples beyond ±1 are clipped before encoding,
as a file would store them.

Simple purifications like these defeat most protections for images (docs/benchmark.md); the
benchmark measures every protection after each of these, and the optimiser can make the noise
for what survives them (`optim.eot`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy import signal

from harmonycloak.errors import AudioFileError, SettingsError
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio, AudioFormat
from harmonycloak.resampling import resample

Attack = Callable[..., np.ndarray]  # (samples (N,), sample_rate_hz, seed=0) -> (N,) float32


# --- codecs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodecRelease:
    """How a song is released in a lossy format.

    Attributes:
        format: what write_audio stores (container, codec, bitrate).
        suffix: the temporary file's extension.
        release_rate_hz: the rate the song is encoded at (the input is resampled to it first).
        encoder: ffmpeg's name for the encoder write_audio uses, to say plainly when it is missing.
    """

    format: AudioFormat
    suffix: str
    release_rate_hz: int
    encoder: str


MP3_128K = CodecRelease(AudioFormat("mp3", "mp3", bitrate_bps=128_000), ".mp3", 44_100, "libmp3lame")
AAC_128K = CodecRelease(AudioFormat("m4a", "aac", bitrate_bps=128_000), ".m4a", 44_100, "aac")
OPUS_96K = CodecRelease(AudioFormat("opus", "opus", bitrate_bps=96_000), ".opus", 48_000, "libopus")


def codec_round_trip(samples: np.ndarray, sample_rate_hz: int, release: CodecRelease) -> np.ndarray:
    """(N,) → resampled to the release rate → encoded and decoded by `release` → back to (N,).

    The codec's delay and padding are removed by io.audio (gapless information in the file),
    so the result lines up with the input; the last sample or so of the rate round trip is cut.
    The file holds one channel: a stereo release at the same bitrate shares its bits between
    two, so this trip is a little gentler than the release of a real stereo song.

    Raises:
        AudioFileError: the encoder is not in this ffmpeg build, or encoding fails.
    """
    samples = _checked_mono(samples)
    _require_encoder(release)
    released = resample(samples.astype(np.float64), sample_rate_hz, release.release_rate_hz)
    released = np.clip(released, -1.0, 1.0).astype(np.float32)[None]  # (1, M): one channel
    with tempfile.TemporaryDirectory(prefix="harmonycloak-attack-") as folder:
        path = Path(folder) / f"song{release.suffix}"
        write_audio(Audio(released, release.release_rate_hz), path, format=release.format)
        decoded = read_audio(path)
    mono = decoded.samples.astype(np.float64).mean(axis=0)  # (M,)
    return _fit_length(resample(mono, decoded.sample_rate_hz, sample_rate_hz), len(samples))


def _require_encoder(release: CodecRelease) -> None:
    try:
        av.codec.Codec(release.encoder, "w")
    except av.codec.codec.UnknownCodecError:
        raise AudioFileError(
            f"the {release.format.codec.upper()} attack needs ffmpeg's {release.encoder} encoder, "
            "which this installation of PyAV does not include") from None


def mp3_128k(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """MP3 at 128 kbps (LAME, CBR) at 44.1 kHz, decoded back to the input's rate."""
    return codec_round_trip(samples, sample_rate_hz, MP3_128K)


def aac_128k(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """AAC-LC at 128 kbps (ffmpeg's encoder) in M4A at 44.1 kHz, decoded back to the input's rate."""
    return codec_round_trip(samples, sample_rate_hz, AAC_128K)


def opus_96k(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Ogg Opus at 96 kbps (libopus, constrained VBR) at 48 kHz, decoded back to the input's rate."""
    return codec_round_trip(samples, sample_rate_hz, OPUS_96K)


# --- resampling ---------------------------------------------------------------------------------

RESAMPLE_ATTACK_RATE_HZ = 22_050


def resample_22k(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Down to 22.05 kHz and back up: removes everything above 11.025 kHz.

    At an input rate of 22.05 kHz or below the round trip changes (almost) nothing: the song
    holds nothing above the intermediate rate's Nyquist frequency.
    """
    samples = _checked_mono(samples)
    low = resample(samples.astype(np.float64), sample_rate_hz, RESAMPLE_ATTACK_RATE_HZ)
    return _fit_length(resample(low, RESAMPLE_ATTACK_RATE_HZ, sample_rate_hz), len(samples))


# --- spectral subtraction -----------------------------------------------------------------------

DENOISE_FRAME_S = 0.032  # 32 ms frames (512 samples at 16 kHz): the usual frame of speech enhancement
DENOISE_HOP_FRACTION = 0.25  # Hann frames at 75 % overlap: the windows sum to a constant
# The noise floor is the mean power per frequency of the quietest 10 % of frames: a song's
# quiet passages (rests, fade-ins, fade-outs) hold the noise with little music on top.
QUIETEST_FRAME_FRACTION = 0.10
# Berouti, Schwartz and Makhoul, "Enhancement of speech corrupted by acoustic noise" (ICASSP
# 1979): subtract α times the noise floor (α > 1 also removes most of the floor's random
# peaks, the "musical noise"), and keep at least β of each bin's power so that no bin becomes
# a hole. They use α of 3-6 and β of 0.005-0.1 for speech at 0-5 dB SNR; music is released at
# far higher SNR, where a milder α suffices and damages the music less.
OVER_SUBTRACTION = 2.0
SPECTRAL_FLOOR = 0.01  # −20 dB: the least share of its power a bin keeps


def denoise_spectral(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Power spectral subtraction (Boll, "Suppression of acoustic noise in speech using spectral
    subtraction", IEEE TASSP 1979) with over-subtraction and a floor (Berouti et al. 1979).

    With X(t, f) the STFT (Hann, `DENOISE_FRAME_S`, 75 % overlap), N(f) the mean |X|² of the
    quietest `QUIETEST_FRAME_FRACTION` of frames (by total power):

        |Y(t, f)|² = max(|X(t, f)|² − α · N(f),  β · |X(t, f)|²),   phase of Y = phase of X,

    α = OVER_SUBTRACTION, β = SPECTRAL_FLOOR; y is the inverse STFT (overlap-add), which lines
    up with x. On stationary white noise alone (|X|² ~ N·Exp(1)) the power kept is
    E[max(E − α, βE)] = e^(−c)(c + 1 − α) + β(1 − e^(−c)(c + 1)), c = α / (1 − β): −8.5 dB.
    """
    samples = _checked_mono(samples).astype(np.float64)
    frame = max(16, int(round(DENOISE_FRAME_S * sample_rate_hz)))
    hop = max(1, int(round(frame * DENOISE_HOP_FRACTION)))
    stft = dict(fs=sample_rate_hz, window="hann", nperseg=frame, noverlap=frame - hop, boundary="even")
    _, _, spectrum = signal.stft(samples, **stft)  # (bins, frames) complex
    power = np.abs(spectrum) ** 2  # (bins, frames)
    floor = noise_floor_power(power, QUIETEST_FRAME_FRACTION)  # (bins,)
    kept = np.maximum(power - OVER_SUBTRACTION * floor[:, None], SPECTRAL_FLOOR * power)
    gain = np.sqrt(np.divide(kept, power, out=np.ones_like(power), where=power > 0))  # (bins, frames)
    _, cleaned = signal.istft(spectrum * gain, **{k: v for k, v in stft.items() if k != "boundary"})
    return _fit_length(cleaned, len(samples))


def noise_floor_power(power: np.ndarray, fraction: float) -> np.ndarray:
    """Mean power per frequency of the quietest ``fraction`` of frames (at least one).

    Args:
        power: |STFT|², shape (bins, frames).
    Returns:
        (bins,) the noise floor's power in each bin.
    """
    frame_power = power.sum(axis=0)  # (frames,)
    count = max(1, int(round(fraction * power.shape[1])))
    quietest = np.argsort(frame_power, kind="stable")[:count]
    return power[:, quietest].mean(axis=1)


# --- noisy purification ---------------------------------------------------------------------------

PURIFY_SNR_DB = 30.0
# The low-pass that follows: 6 kHz keeps the fundamentals of nearly every instrument (the
# piano's top note is 4.19 kHz) and their first partials, where the music and the models'
# attention lie, and removes the band above, where a song has the least energy of its own, so
# that the added noise and any perturbation hidden there are most exposed. At the benchmark's
# 16 kHz it cuts the top 2 kHz of the 8 kHz the models hear; at or below 12 kHz it does nothing.
PURIFY_LOWPASS_HZ = 6_000.0
PURIFY_LOWPASS_ORDER = 8  # Butterworth, run forwards and backwards: zero phase, 16th-order slope


def purify_noise_lowpass(samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Noisy purification: y = lowpass(x + n), n white Gaussian at `PURIFY_SNR_DB` below x's power.

    The purifying noise drowns the finest structure of a perturbation; the low-pass removes the
    noise (and the perturbation) above `PURIFY_LOWPASS_HZ`. Deterministic for a seed.
    """
    samples = _checked_mono(samples)
    noise = gaussian_noise_at_snr(samples, PURIFY_SNR_DB, np.random.default_rng(seed))
    return lowpass(samples.astype(np.float64) + noise, sample_rate_hz, PURIFY_LOWPASS_HZ)


def gaussian_noise_at_snr(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise (N,) float64 with power mean(x²) · 10^(−snr_db / 10); zeros for silence."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return rng.normal(0.0, np.sqrt(power * 10.0 ** (-snr_db / 10.0)), samples.shape)


def lowpass(samples: np.ndarray, sample_rate_hz: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase Butterworth low-pass of (N,) at ``cutoff_hz`` (−6 dB there: the −3 dB filter
    applied twice); float32. Returns the input when the cutoff is at or above Nyquist."""
    if cutoff_hz >= sample_rate_hz / 2:
        return np.asarray(samples, dtype=np.float32)
    sos = signal.butter(PURIFY_LOWPASS_ORDER, cutoff_hz, btype="low", fs=sample_rate_hz, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(samples, dtype=np.float64)).astype(np.float32)


# --- registry -------------------------------------------------------------------------------------

ATTACKS: dict[str, Attack] = {
    "mp3-128k": mp3_128k,
    "aac-128k": aac_128k,
    "opus-96k": opus_96k,
    "resample-22k": resample_22k,
    "denoise-spectral": denoise_spectral,
    "purify-noise-lowpass": purify_noise_lowpass,
}


def check_attack(name: str) -> None:
    """Refuse a purification the project does not have, naming the ones it has.

    Raises:
        SettingsError: no attack has this name.
    """
    if name not in ATTACKS:
        raise SettingsError(f"unknown purification attack '{name}'; known: {', '.join(ATTACKS)}")


def apply_attack(name: str, samples: np.ndarray, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Run the attack called ``name`` (a key of `ATTACKS`) on (N,) samples; (N,) float32.

    Raises:
        SettingsError: no attack has this name.
        AudioFileError: the samples are not a non-empty finite mono signal, or a codec is missing.
    """
    check_attack(name)
    return ATTACKS[name](samples, sample_rate_hz, seed=seed)


# --- helpers ----------------------------------------------------------------------------------------

def _checked_mono(samples: np.ndarray) -> np.ndarray:
    """The samples as an array after checking they are (N,), N ≥ 1, all finite."""
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.shape[0] == 0:
        raise AudioFileError(f"an attack takes mono samples of shape (N,), N ≥ 1; got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise AudioFileError("the samples hold NaN or infinite values")
    return samples


def _fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """(M,) cut or zero-padded at the end to (length,) float32."""
    out = np.zeros(length, dtype=np.float32)
    kept = min(length, samples.shape[0])
    out[:kept] = samples[:kept]
    return out
