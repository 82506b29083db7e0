"""The torch frequency masking threshold against an independent, loop-based numpy oracle.

`mpeg1_model1_threshold_oracle` below is a test oracle: a plain, one-frame-at-a-time
reading of MPEG-1 psychoacoustic model 1 (ISO/IEC 11172-3 Annex D as summarised by Painter
& Spanias, Proc. IEEE 2000, §III), written from that description with the simplifications
the package documents (two-slope spreading function, 1-Bark critical bands, the
0.5-Bark rule applied to every masker against all its neighbours). It shares no code with
`harmonycloak.psycho.functional`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from harmonycloak.psycho import functional as PF

EXAMPLE_SONG = Path(__file__).resolve().parents[2] / "examples" / "elf-land.ogg"


def mpeg1_model1_threshold_oracle(levels_db: np.ndarray, sample_rate_hz: float, n_fft: int):
    """Global masking threshold (dB SPL) of ONE frame's spectrum ``levels_db`` (bins,), and the
    maskers kept, as a list of (bin, level_db, is_tonal)."""
    num_bins = len(levels_db)
    bin_hz = sample_rate_hz / n_fft
    freq = np.arange(num_bins) * bin_hz
    bark = 13 * np.arctan(0.00076 * freq) + 3.5 * np.arctan((freq / 7500) ** 2)
    f_khz = np.maximum(freq, 20.0) / 1000
    quiet = 3.64 * f_khz**-0.8 - 6.5 * np.exp(-0.6 * (f_khz - 3.3) ** 2) + 1e-3 * f_khz**4

    def neighbourhood(k):
        # Layer II table: Δk = 2 (< bin 63), 3 (< 127), 6 (< 255), 12 above, for 43.07 Hz bins.
        ref = 44100 / 1024
        f = freq[k]
        if f < 63 * ref:
            width = 2
        elif f < 127 * ref:
            width = 3
        elif f < 255 * ref:
            width = 6
        else:
            width = 12
        return max(2, int(round(width * ref / bin_hz)))

    # 1. Tonal maskers.
    maskers = []  # (bin, level_db, is_tonal)
    tonal_bins = []
    for k in range(1, num_bins):
        dk = neighbourhood(k)
        if k - dk < 0 or k + dk > num_bins - 1:
            continue
        if not (levels_db[k] > levels_db[k - 1] and levels_db[k] >= levels_db[k + 1]):
            continue
        if all(levels_db[k] - levels_db[k + j] >= 7 and levels_db[k] - levels_db[k - j] >= 7 for j in range(2, dk + 1)):
            tonal_bins.append(k)
            power = sum(10 ** (levels_db[i] / 10) for i in (k - 1, k, k + 1))
            maskers.append((k, 10 * math.log10(power), True))
    # 2. Noise maskers: per 1-Bark band, everything outside the tonal neighbourhoods.
    excluded = {0}
    for k in tonal_bins:
        excluded.update(range(k - neighbourhood(k), k + neighbourhood(k) + 1))
    for band in range(int(math.floor(bark[-1])) + 1):
        members = [k for k in range(1, num_bins) if band <= bark[k] < band + 1]
        if not members:
            continue
        power = sum(10 ** (levels_db[k] / 10) for k in members if k not in excluded)
        if power > 0:
            centre = int(round(math.exp(sum(math.log(k) for k in members) / len(members))))
            maskers.append((centre, 10 * math.log10(power), False))
    # 3. Decimation.
    maskers = [m for m in maskers if m[1] >= quiet[m[0]]]
    by_bin = {}
    for m in maskers:  # one masker per bin: the stronger, tonal on a tie
        other = by_bin.get(m[0])
        if other is None or m[1] > other[1] or (m[1] == other[1] and m[2]):
            by_bin[m[0]] = m
    maskers = list(by_bin.values())
    kept = []
    for k, level, tonal in maskers:
        beaten = any(
            abs(bark[k2] - bark[k]) < 0.5 and (level2 > level or (level2 == level and k2 < k))
            for k2, level2, _ in maskers
            if k2 != k
        )
        if not beaten:
            kept.append((k, level, tonal))
    # 4. Individual and global thresholds.
    total = 10 ** (quiet / 10)
    for k, level, tonal in kept:
        z = bark[k]
        index = -6.025 - 0.275 * z if tonal else -2.025 - 0.175 * z
        for i in range(num_bins):
            dz = bark[i] - z
            if dz < 0:
                spread = 27 * dz
            else:
                spread = min(-27 + 0.37 * max(level - 40, 0), 0) * dz
            total[i] += 10 ** ((level + index + spread) / 10)
    return 10 * np.log10(total), kept


def compare(levels_db: np.ndarray, sample_rate_hz: float, n_fft: int) -> float:
    """Largest absolute difference (dB) between the torch threshold and the oracle, over frames.

    Also checks that the frames exercise both kinds of masker and the decimation, so that
    agreement is not agreement on an empty case.
    """
    torch_threshold = PF.frequency_masking_threshold_db_spl(
        torch.from_numpy(levels_db), sample_rate_hz, n_fft
    ).numpy()
    worst, tonal, noise = 0.0, 0, 0
    for frame in range(levels_db.shape[0]):
        oracle, kept = mpeg1_model1_threshold_oracle(levels_db[frame], sample_rate_hz, n_fft)
        worst = max(worst, float(np.max(np.abs(oracle - torch_threshold[frame]))))
        tonal += sum(1 for _, _, is_tonal in kept if is_tonal)
        noise += sum(1 for _, _, is_tonal in kept if not is_tonal)
    assert tonal >= levels_db.shape[0] and noise >= levels_db.shape[0], (tonal, noise)
    return worst


def random_music_like_spectra(num_frames: int, num_bins: int, seed: int) -> np.ndarray:
    """A rough noise floor plus a handful of sharp peaks, in dB SPL."""
    rng = np.random.default_rng(seed)
    floor = 45 - 30 * np.linspace(0, 1, num_bins) + rng.normal(0, 6, size=(num_frames, num_bins))
    spectra = floor.copy()
    for frame in range(num_frames):
        for _ in range(rng.integers(3, 12)):
            k = rng.integers(3, num_bins - 3)
            height = rng.uniform(20, 55)
            spectra[frame, k] += height
            spectra[frame, k - 1] += height - rng.uniform(4, 8)
            spectra[frame, k + 1] += height - rng.uniform(4, 8)
    return spectra


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_threshold_matches_oracle_on_random_spectra_16khz(seed):
    spectra = random_music_like_spectra(4, 257, seed)
    assert compare(spectra, 16000, 512) < 1e-6


def test_torch_threshold_matches_oracle_on_random_spectra_44khz():
    spectra = random_music_like_spectra(2, 1025, 7)
    assert compare(spectra, 44100, 2048) < 1e-6


def test_torch_threshold_matches_oracle_on_real_music():
    samples, sample_rate_hz = sf.read(EXAMPLE_SONG, dtype="float64", start=10 * 44100, frames=44100 // 2)
    assert sample_rate_hz == 44100
    mono = torch.from_numpy(samples.mean(axis=1))
    spectra = PF.spectrum_db_spl(mono, 2048, 512).numpy()[5:40:7]  # 5 frames inside the excerpt
    assert compare(spectra, sample_rate_hz, 2048) < 1e-6


def test_comparison_detects_a_small_change():
    """The comparison can fail: a threshold from a spectrum 0.5 dB louder disagrees with the oracle."""
    spectra = random_music_like_spectra(1, 257, 3)
    oracle, _ = mpeg1_model1_threshold_oracle(spectra[0], 16000, 512)
    louder = PF.frequency_masking_threshold_db_spl(torch.from_numpy(spectra + 0.5), 16000, 512).numpy()[0]
    assert np.max(np.abs(louder - oracle)) > 0.4
