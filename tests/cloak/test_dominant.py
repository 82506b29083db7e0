import math

import pytest
import torch

from harmonycloak.cloak.dominant import DominantToneCloak, DominantToneSettings
from harmonycloak.errors import SettingsError

RATE = 16_000


def tone(frequency_hz: float, amplitude: float, seconds: float, rate: int = RATE) -> torch.Tensor:
    time = torch.arange(round(seconds * rate)) / rate
    return amplitude * torch.sin(2 * math.pi * frequency_hz * time)


def test_dominant_frequency_and_level_of_a_pure_tone():
    cloak = DominantToneCloak(tone(440.0, 0.5, 1.0)[None], RATE)
    inner = slice(10, -10)  # away from the zero-padded edges
    assert torch.allclose(cloak.frequency_hz[0, inner], torch.tensor(440.0), atol=1.0)
    # level of a sine of amplitude 0.5 with a full-scale sine at 96 dB SPL: 96 + 20 log10(0.5)
    assert torch.allclose(cloak.music_level_db_spl[0, inner], torch.tensor(96 + 20 * math.log10(0.5)), atol=0.2)


def test_the_louder_of_two_tones_is_dominant():
    music = tone(300.0, 0.1, 1.0) + tone(2_000.0, 0.3, 1.0)
    cloak = DominantToneCloak(music[None], RATE)
    assert torch.allclose(cloak.frequency_hz[0, 10:-10], torch.tensor(2_000.0), atol=2.0)


def test_bounds_follow_the_hearing_threshold_and_the_music_level_with_headroom():
    headroom_db = 14.0
    cloak = DominantToneCloak(tone(1_000.0, 0.25, 1.0)[None], RATE, DominantToneSettings(headroom_db=headroom_db))
    f_khz = 1.0  # Terhardt by hand at 1 kHz
    quiet_db = 3.64 * f_khz**-0.8 - 6.5 * math.exp(-0.6 * (f_khz - 3.3) ** 2) + 1e-3 * f_khz**4
    assert torch.allclose(cloak.lower_db_spl[0, 10:-10], torch.tensor(quiet_db), atol=0.05)
    level_db = 96 + 20 * math.log10(0.25)
    assert torch.allclose(cloak.upper_db_spl[0, 10:-10], torch.tensor(level_db - headroom_db), atol=0.2)


@pytest.mark.parametrize("logit", [-30.0, 0.0, 30.0])
def test_noise_never_exceeds_its_window_bound_and_is_zero_in_silent_windows(logit):
    music = tone(523.25, 0.3, 1.2) * (1 + 0.5 * torch.sin(2 * math.pi * 3 * torch.arange(19_200) / RATE))
    music[6_400:9_600] = 0.0  # 200 ms of digital silence
    cloak = DominantToneCloak(music[None], RATE)
    with torch.no_grad():
        cloak.level_logit.fill_(logit)
        cloak.level_logit[0, ::7] = -logit  # uneven levels, so that cross-fades matter
        noise = cloak.noise(torch.tensor([0]), 19_200)[0, 0]
    window = cloak.window_samples
    # Eq. 11's bound, the music's level at ν_t minus the headroom, as an amplitude by the
    # calibration formula; windows without a dominant note (under 30 dB SPL) must be silent
    level = cloak.music_level_db_spl[0]
    upper_amplitude = 10 ** ((level - 14.0 - 96) / 20) * (level >= 30.0)
    peaks = noise.reshape(-1, window).abs().max(dim=1).values
    assert torch.all(peaks <= upper_amplitude * (1 + 1e-4) + 1e-9)
    assert torch.all(noise[6_400:9_600] == 0.0)
    assert not cloak.active[0, 40:60].any() and cloak.active[0, 10:30].all()


def test_windows_join_without_clicks():
    # a melody: the dominant frequency jumps every 100 ms
    notes = [262.0, 392.0, 330.0, 523.0, 294.0]
    music = torch.cat([tone(f, 0.4, 0.1) for f in notes])
    cloak = DominantToneCloak(music[None], RATE)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cloak.level_logit.copy_(torch.randn(cloak.level_logit.shape, generator=generator) * 4)
        cloak.phase_offset.copy_(torch.randn(cloak.phase_offset.shape, generator=generator))
        noise = cloak.noise(torch.tensor([0]), music.shape[-1])[0, 0]
    # A click is a jump. A sine of amplitude A at f moves at most 2π f A / rate per sample; the
    # linear envelope adds at most |ΔA| / window per sample, the phase offset's ramp A |Δψ| / window.
    amplitude, offset = cloak.amplitude()[0], cloak.phase_offset[0].detach()
    max_step = 2 * math.pi * cloak.frequency_hz.max() * amplitude.max() / RATE
    max_step += (amplitude.diff().abs().max() + amplitude.max() * offset.diff().abs().max()) / cloak.window_samples
    assert noise.diff().abs().max() <= 1.01 * max_step


def test_rendering_at_another_rate_is_the_same_continuous_signal():
    music = tone(440.0, 0.3, 0.5)
    cloak = DominantToneCloak(music[None], RATE)
    at_working_rate = cloak.render(RATE, 8_000)[0]
    at_48k = cloak.render(48_000, 24_000)[0]
    assert torch.allclose(torch.from_numpy(at_48k[::3]), torch.from_numpy(at_working_rate), atol=1e-7)
    segment = cloak.noise(torch.tensor([1_600]), 3_200)[0, 0].detach()
    assert torch.allclose(segment, torch.from_numpy(at_working_rate[1_600:4_800]), atol=1e-7)


def test_window_length_outside_five_to_a_hundred_ms_is_refused():
    with pytest.raises(SettingsError, match="5 to 100 ms"):
        DominantToneSettings(window_ms=2.0)


def test_analysis_in_chunks_finds_the_same_partials_as_in_one_piece():
    from harmonycloak.cloak.dominant import dominant_partials

    # A melody whose notes change inside chunk borders, in two lanes of different loudness.
    generator = torch.Generator().manual_seed(3)
    notes_hz = 200.0 + 1_800.0 * torch.rand(12, generator=generator)
    melody = torch.cat([tone(float(f), 0.3, 0.25) for f in notes_hz])
    lanes = torch.stack([melody, 0.1 * melody.flip(0)])
    whole = DominantToneSettings(analysis_chunk_s=100.0)
    chunked = DominantToneSettings(analysis_chunk_s=0.37)  # not a multiple of the window, many chunks
    frequency_whole, level_whole = dominant_partials(lanes, RATE, 160, whole)
    frequency_chunked, level_chunked = dominant_partials(lanes, RATE, 160, chunked)
    assert frequency_whole.shape == (2, math.ceil(lanes.shape[-1] / 160))
    assert torch.allclose(frequency_chunked, frequency_whole, atol=1e-3)
    assert torch.allclose(level_chunked, level_whole, atol=1e-3)


@pytest.mark.parametrize("window_ms", [5.0, 10.0, 12.5])
def test_window_aligned_synthesis_equals_the_general_one(window_ms):
    music = torch.cat([tone(330.0, 0.2, 0.3), tone(1_200.0, 0.4, 0.3), tone(700.0, 0.1, 0.2)])
    cloak = DominantToneCloak(torch.stack([music, 0.5 * music]), RATE, DominantToneSettings(window_ms=window_ms))
    with torch.no_grad():
        cloak.level_logit.normal_(generator=torch.Generator().manual_seed(1))
        cloak.phase_offset.uniform_(-3, 3, generator=torch.Generator().manual_seed(2))
    w = cloak.window_samples
    starts = torch.tensor([0, 3 * w, len(music) - 4 * w, len(music)])  # the last runs past the song's end
    aligned = cloak.noise(starts, 8 * w)
    times_s = (starts[:, None].double() + torch.arange(8 * w, dtype=torch.float64)) / RATE
    general = cloak._tones(cloak.amplitude(), cloak.phase_offset, times_s)
    assert aligned.shape == general.shape == (4, 2, 8 * w)
    assert torch.allclose(aligned, general, atol=1e-5)
