import numpy as np
import pytest

from harmonycloak.resampling import resample, resample_in_pieces


@pytest.mark.parametrize("from_hz, to_hz", [(44_100, 16_000), (16_000, 48_000), (22_050, 44_100)])
def test_a_tone_keeps_its_frequency_amplitude_and_timing(from_hz, to_hz):
    seconds, frequency_hz = 0.5, 440.0
    tone = np.sin(2 * np.pi * frequency_hz * np.arange(round(seconds * from_hz)) / from_hz)
    out = resample(tone[None], from_hz, to_hz)[0]
    assert len(out) == round(seconds * to_hz)
    expected = np.sin(2 * np.pi * frequency_hz * np.arange(len(out)) / to_hz)  # no delay, same phase
    inner = slice(len(out) // 10, -len(out) // 10)  # away from the filter's edge effects
    assert np.max(np.abs(out[inner] - expected[inner])) < 1e-2


def test_equal_rates_return_the_input_itself():
    samples = np.ones((2, 10), np.float32)
    assert resample(samples, 16_000, 16_000) is samples


def test_content_above_the_new_nyquist_is_removed():
    rate = 48_000
    high = np.sin(2 * np.pi * 12_000.0 * np.arange(rate) / rate)  # above 8 kHz, the Nyquist of 16 kHz
    out = resample(high, rate, 16_000)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.01


@pytest.mark.parametrize("from_hz, to_hz, alignment", [(16_000, 44_100, 256), (44_100, 16_000, 1), (22_050, 48_000, 64),
                                                       (16_000, 16_000, 128)])
def test_resampling_read_in_pieces_gives_the_values_of_resampling_at_once(from_hz, to_hz, alignment):
    samples = np.random.default_rng(0).standard_normal((2, 100_001)).astype(np.float32)
    num_out = -(-samples.shape[-1] * to_hz // from_hz)
    reads = []

    def read(start, stop):
        reads.append((start, stop))
        return samples[:, start:stop]

    in_pieces = resample_in_pieces(read, samples.shape[-1], from_hz, to_hz, num_out + 7, piece_frames=4000,
                                   alignment=alignment)
    at_once = resample(samples, from_hz, to_hz)
    assert in_pieces.dtype == np.float32 and in_pieces.shape == (2, num_out + 7)
    np.testing.assert_allclose(in_pieces[:, :num_out], at_once, rtol=0, atol=1e-6)
    assert not in_pieces[:, num_out:].any()
    assert len(reads) > 3 and all(start % alignment == 0 for start, _ in reads)
    assert max(stop - start for start, stop in reads) < samples.shape[-1] // 2  # never the whole signal
