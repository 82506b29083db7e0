"""Purification attacks: alignment, length, determinism, and each attack's effect measured by FFT."""

import math

import av
import numpy as np
import pytest
from scipy import signal

from harmonycloak import purification as attacks
from harmonycloak.purification import ATTACKS, apply_attack
from harmonycloak.errors import AudioFileError, SettingsError

RATE = 16_000  # the benchmark's rate
CODECS = ("mp3-128k", "aac-128k", "opus-96k")


def _chirp(seconds=2.0, rate=RATE):
    """A logarithmic sweep 100 Hz → 7 kHz: its autocorrelation has one sharp peak at lag 0."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * signal.chirp(t, 100.0, t[-1], 7000.0, method="logarithmic")).astype(np.float32)


def _music_like(seconds=2.0, rate=RATE, seed=0):
    """Eight decaying harmonic notes (9 partials at 1/h amplitude) at random pitches and times, peak 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    for _ in range(8):
        f0_hz = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        start_s, length_s = rng.uniform(0, seconds - 0.5), rng.uniform(0.3, 1.0)
        envelope = np.where((t >= start_s) & (t < start_s + length_s), np.exp(-3.0 * (t - start_s)), 0.0)
        for h in range(1, 10):
            if f0_hz * h < 0.45 * rate:
                x += envelope * 0.3 / h * np.sin(2 * np.pi * f0_hz * h * t + rng.uniform(0, 2 * np.pi))
    return (0.6 * x / np.max(np.abs(x))).astype(np.float32)


def _snr_db(reference, test):
    reference = reference.astype(np.float64)
    return 10 * math.log10(np.sum(reference ** 2) / np.sum((test.astype(np.float64) - reference) ** 2))


def _tone_power(x, rate, frequency_hz, half_width_hz=20.0):
    """Power of x within ±half_width_hz of frequency_hz (Hann-windowed FFT), linear units."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)))) ** 2
    frequencies_hz = np.fft.rfftfreq(len(x), 1 / rate)
    return float(np.sum(spectrum[np.abs(frequencies_hz - frequency_hz) <= half_width_hz]))


def test_registry_holds_the_benchmark_attacks():
    assert set(ATTACKS) == {"mp3-128k", "aac-128k", "opus-96k", "resample-22k", "denoise-spectral",
                            "purify-noise-lowpass"}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_keeps_length_dtype_and_alignment(name):
    chirp = _chirp()
    out = apply_attack(name, chirp, RATE, seed=0)
    assert out.shape == chirp.shape and out.dtype == np.float32
    lags = signal.correlation_lags(len(out), len(chirp))
    correlation = signal.correlate(out.astype(np.float64), chirp.astype(np.float64))
    window = np.abs(lags) <= 200
    lag = int(lags[window][np.argmax(correlation[window])])
    peak = correlation[window].max() / np.sqrt(np.sum(chirp.astype(np.float64) ** 2) * np.sum(out.astype(np.float64) ** 2))
    print(f"{name}: correlation peak at lag {lag} samples, normalised peak {peak:.3f}")
    assert abs(lag) <= 1
    assert peak > 0.5  # the chirp is still there, not replaced by something else


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_keeps_odd_lengths_and_is_deterministic(name):
    song = _music_like(seconds=1.0)[:4_999].astype(np.float64)  # odd length, float64 in
    first, second = apply_attack(name, song, RATE, seed=3), apply_attack(name, song, RATE, seed=3)
    assert first.shape == (4_999,) and first.dtype == np.float32
    assert np.array_equal(first, second)


def test_random_attack_depends_on_its_seed():
    song = _music_like()
    assert not np.array_equal(apply_attack("purify-noise-lowpass", song, RATE, seed=0),
                              apply_attack("purify-noise-lowpass", song, RATE, seed=1))


@pytest.mark.parametrize("name", CODECS)
def test_codec_snr_on_music_is_plausible(name):
    # A perceptual coder hides its quantisation noise under the masking threshold, which lies
    # roughly 10-30 dB below the music in each band, so the waveform SNR of a 128 kbps (96 for
    # Opus) release is in the teens to the thirties; here higher, up to the forties, because
    # a 16 kHz song fills only 0-8 kHz of the 44.1/48 kHz band the bits are meant for.
    # Below 15 dB something is wrong: a shift of one sample alone gives less (checked below).
    # Above 60 dB the codec did nothing (16-bit PCM alone would give about 90 dB).
    song = _music_like()
    out = apply_attack(name, song, RATE)
    snr_db = _snr_db(song, out)
    shifted_db = _snr_db(song, np.roll(out, 1))
    print(f"{name}: SNR {snr_db:.1f} dB on the music-like signal; shifted by one sample {shifted_db:.1f} dB")
    assert 15.0 < snr_db < 60.0
    assert shifted_db < 15.0


def test_resample_22k_removes_what_lies_above_11_khz_and_keeps_what_lies_below():
    rate = 44_100
    t = np.arange(rate) / rate
    tones_hz = (1_000.0, 9_000.0, 15_000.0)
    song = sum(0.2 * np.sin(2 * np.pi * f * t) for f in tones_hz).astype(np.float32)
    out = apply_attack("resample-22k", song, rate)
    change_db = {f: 10 * math.log10(_tone_power(out, rate, f) / _tone_power(song, rate, f)) for f in tones_hz}
    print("resample-22k, tone power change (dB):", {f: round(d, 2) for f, d in change_db.items()})
    assert abs(change_db[1_000.0]) < 0.1  # 22.05 kHz holds everything below 11.025 kHz
    assert abs(change_db[9_000.0]) < 0.1
    assert change_db[15_000.0] < -50.0  # above the intermediate Nyquist frequency: gone
    # nor folded back below it (15 kHz would alias to 22.05 - 15 = 7.05 kHz)
    assert _tone_power(out, rate, 7_050.0) < 1e-5 * _tone_power(song, rate, 15_000.0)


def _white_noise_kept_by_spectral_subtraction_db(alpha, beta):
    """Power kept by max(P − αN, βP) of a bin whose power is N · E, E ~ Exp(1) (white noise):
    ∫₀^c βe·e^(−e) de + ∫_c^∞ (e − α)e^(−e) de with c = α / (1 − β), integrated numerically."""
    from scipy import integrate

    c = alpha / (1 - beta)
    low, _ = integrate.quad(lambda e: beta * e * math.exp(-e), 0, c)
    high, _ = integrate.quad(lambda e: (e - alpha) * math.exp(-e), c, math.inf)
    return 10 * math.log10(low + high)


def test_denoise_spectral_lowers_stationary_noise_by_the_expected_amount_and_keeps_the_tone():
    n = 4 * RATE
    t = np.arange(n) / RATE
    # A 1 kHz tone sounding 0.7 s of each second, with 50 ms raised-cosine ramps (no clicks),
    # so that a fifth of the frames hold the noise alone: the quietest frames.
    phase = t % 1.0
    ramp = 0.05
    gate = np.clip(np.minimum(phase / ramp, (0.7 - phase) / ramp), 0.0, 1.0)
    gate = 0.5 - 0.5 * np.cos(np.pi * gate)
    tone = 0.3 * np.sin(2 * np.pi * 1_000.0 * t) * gate
    noise = 0.01 * np.random.default_rng(0).standard_normal(n)
    song = (tone + noise).astype(np.float32)
    out = apply_attack("denoise-spectral", song, RATE).astype(np.float64)

    gaps = gate == 0  # noise alone
    kept_db = 10 * math.log10(np.sum(out[gaps] ** 2) / np.sum(song[gaps].astype(np.float64) ** 2))
    expected_db = _white_noise_kept_by_spectral_subtraction_db(attacks.OVER_SUBTRACTION, attacks.SPECTRAL_FLOOR)
    tone_change_db = 10 * math.log10(_tone_power(out, RATE, 1_000.0) / _tone_power(song, RATE, 1_000.0))
    print(f"denoise-spectral: noise kept {kept_db:.2f} dB (expected {expected_db:.2f} dB), tone {tone_change_db:+.3f} dB")
    # The floor is learnt from the quietest frames, a little below the noise's mean power, and
    # overlap-add mixes neighbouring frames: a 1 dB allowance for both.
    assert kept_db == pytest.approx(expected_db, abs=1.0)
    assert abs(tone_change_db) < 0.2  # the tone stands ~40 dB above the noise in its bins


def test_denoise_spectral_leaves_noiseless_music_alone():
    song = _music_like()  # its quietest frames are silent: a zero noise floor
    assert _snr_db(song, apply_attack("denoise-spectral", song, RATE)) > 60.0


def test_purify_noise_lowpass_adds_noise_at_30_db_and_cuts_above_the_cutoff():
    t = np.arange(4 * RATE) / RATE
    song = (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 2_500.0 * t)).astype(np.float32)
    out = apply_attack("purify-noise-lowpass", song, RATE, seed=0)
    residual = out.astype(np.float64) - song
    # The song has nothing near the cutoff, so the residual is the added noise, low-passed.
    # Below 5 kHz the filter passes everything: there the noise keeps its white density, and
    # its full-band power is that band's power × (8 kHz / 5 kHz).
    spectrum = np.abs(np.fft.rfft(residual)) ** 2
    frequencies_hz = np.fft.rfftfreq(len(residual), 1 / RATE)
    passband = (frequencies_hz > 50.0) & (frequencies_hz < 5_000.0)
    noise_power = np.sum(spectrum[passband]) / np.sum(passband) * len(spectrum) / len(residual) ** 2 * 2
    snr_db = 10 * math.log10(np.mean(song.astype(np.float64) ** 2) / noise_power)
    print(f"purify-noise-lowpass: SNR of the added noise before the low-pass {snr_db:.2f} dB")
    assert snr_db == pytest.approx(attacks.PURIFY_SNR_DB, abs=0.3)  # 64,000 samples: sampling error ≈ 0.05 dB

    above = frequencies_hz > 7_000.0  # the noise above the cutoff is gone
    assert np.mean(spectrum[above]) < 1e-3 * np.mean(spectrum[passband])
    for f in (440.0, 2_500.0):  # the music below it is kept
        assert 10 * math.log10(_tone_power(out, RATE, f) / _tone_power(song, RATE, f)) == pytest.approx(0.0, abs=0.05)


def test_attacks_refuse_malformed_samples_and_unknown_names():
    with pytest.raises(SettingsError, match="unknown purification attack"):
        apply_attack("jpeg", _chirp(0.1), RATE)
    for bad in (np.zeros((2, 100), np.float32), np.zeros(0, np.float32), np.full(100, np.nan, np.float32)):
        for name in ("resample-22k", "mp3-128k"):
            with pytest.raises(AudioFileError):
                apply_attack(name, bad, RATE)


def test_missing_codec_is_named_plainly(monkeypatch):
    def no_codec(name, mode="r"):
        raise av.codec.codec.UnknownCodecError(name)

    monkeypatch.setattr(attacks.av.codec, "Codec", no_codec)
    with pytest.raises(AudioFileError, match="needs ffmpeg's libmp3lame encoder"):
        apply_attack("mp3-128k", _chirp(0.1), RATE)
