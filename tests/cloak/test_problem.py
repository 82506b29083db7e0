import numpy as np
import pytest
import torch

from harmonycloak.cloak.model_input import segment_starts
from harmonycloak.cloak.problem import track_weights


@pytest.mark.parametrize(
    ("num_samples", "segment", "expected"),
    [(8, 4, [0, 4]), (10, 4, [0, 4, 6]), (4, 4, [0]), (9, 3, [0, 3, 6])],
)
def test_segment_starts_tile_the_song(num_samples, segment, expected):
    assert segment_starts(num_samples, segment).tolist() == expected


def test_track_weights_are_one_minus_energy_share():
    # track 0: one lane of energy 4·1² = 4; track 1: two lanes of energy 4·1² + 4·(√2)² = 12
    lanes = torch.tensor([[1.0] * 4, [1.0] * 4, [2**0.5] * 4])
    weights = track_weights(lanes, torch.tensor([0, 1, 1]))
    assert torch.allclose(weights, torch.tensor([1 - 4 / 16, 1 - 12 / 16, 1 - 12 / 16]))


def test_single_track_weight_is_one():
    assert torch.equal(track_weights(torch.randn(2, 10), torch.tensor([0, 0])), torch.ones(2))


class ConstantNoise:
    """Test cloak: the same constant offset per lane everywhere."""

    sample_rate_hz, alignment_samples = 100, 10

    def __init__(self, offsets: list[float]):
        self.offsets = torch.tensor(offsets)

    def noise(self, starts, num_samples):
        return self.offsets[None, :, None].expand(len(starts), -1, num_samples)


def test_regulariser_is_the_weighted_noise_to_music_power_ratio_and_the_models_hear_the_mono_mix():
    from harmonycloak.cloak.problem import AudioCloakProblem

    # Two mono tracks: track 0 is a constant 0.5, track 1 a constant 1.0.
    lanes = torch.stack([torch.full((100,), 0.5), torch.full((100,), 1.0)])
    problem = AudioCloakProblem(lanes, torch.tensor([0, 1]), ConstantNoise([0.05, 0.2]), segment_s=0.5)
    inputs, regulariser = problem.protected_batch(torch.tensor([0, 1]))
    # Weights: energies 25 and 100 of 125 → w = 0.8 and 0.2. Power ratios (0.05/0.5)² = 0.01
    # and (0.2/1)² = 0.04 (the silence floor, 1e-6 on an energy of 12.5 or 50, is negligible).
    assert torch.allclose(regulariser, torch.tensor([0.8 * 0.01 + 0.2 * 0.04] * 2), rtol=1e-5)
    # Models hear the mono sum of the tracks: 0.55 + 1.2.
    assert inputs.shape == (2, 50) and torch.allclose(inputs, torch.tensor(1.75))


class RampNoise(torch.nn.Module):
    """Test cloak: δ = gain · (sample index), one learnable gain per song, so gradients show which song moved."""

    sample_rate_hz, alignment_samples = 100, 10

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(0.01))

    def noise(self, starts, num_samples):
        index = (starts[:, None] + torch.arange(num_samples)).float()
        return (self.gain * index)[:, None, :]


def two_songs():
    from harmonycloak.cloak.problem import AudioCloakProblem, SongsProblem

    songs = [torch.linspace(0.1, 1.0, 100)[None], torch.linspace(-1.0, -0.2, 70)[None]]  # 2 and 2 segments of 50
    problems = [AudioCloakProblem(lanes, torch.tensor([0]), RampNoise(), segment_s=0.5) for lanes in songs]
    return problems, SongsProblem(problems)


def test_songs_problem_numbers_the_segments_song_after_song_and_keeps_the_batch_order():
    problems, together = two_songs()
    assert together.num_segments == problems[0].num_segments + problems[1].num_segments == 4
    # Segment ids 3, 0, 2: song 1's second segment, song 0's first, song 1's first.
    inputs, regulariser = together.protected_batch(torch.tensor([3, 0, 2]))
    parts = [problems[1].protected_batch(torch.tensor([1])), problems[0].protected_batch(torch.tensor([0])),
             problems[1].protected_batch(torch.tensor([0]))]
    assert torch.equal(inputs, torch.cat([part[0] for part in parts]))
    assert torch.equal(regulariser, torch.cat([part[1] for part in parts]))
    assert torch.equal(together.clean_batch(torch.tensor([1, 2])),
                       torch.cat([problems[0].clean_batch(torch.tensor([1])), problems[1].clean_batch(torch.tensor([0]))]))
    assert together.noise_parameters() == problems[0].noise_parameters() + problems[1].noise_parameters()


def test_a_segment_of_one_song_moves_only_that_songs_noise():
    _, together = two_songs()
    inputs, _ = together.protected_batch(torch.tensor([2, 3]))  # song 1 only
    gradients = torch.autograd.grad(inputs.sum(), together.noise_parameters(), allow_unused=True)
    assert gradients[0] is None and gradients[1] is not None and float(gradients[1]) != 0.0


def test_songs_optimised_together_need_segments_of_one_length():
    from harmonycloak.cloak.problem import AudioCloakProblem, SongsProblem
    from harmonycloak.errors import SettingsError

    lanes = torch.ones(1, 100)
    problems = [AudioCloakProblem(lanes, torch.tensor([0]), RampNoise(), segment_s=seconds) for seconds in (0.5, 0.3)]
    with pytest.raises(SettingsError, match="one length"):
        SongsProblem(problems)


@pytest.mark.parametrize("cloak_kind", ["masked", "gain"])
def test_the_whole_noise_rendered_in_pieces_is_the_noise_rendered_at_once(monkeypatch, cloak_kind):
    from harmonycloak.cloak import problem
    from harmonycloak.cloak.gain import GainModulationCloak
    from harmonycloak.cloak.masked import MaskedSpectrumCloak

    rate_hz = 16_000
    time = torch.arange(3 * rate_hz) / rate_hz
    music = torch.stack([0.3 * torch.sin(2 * torch.pi * 440 * time) * (1 + torch.sin(2 * torch.pi * 0.5 * time)),
                         0.2 * torch.sin(2 * torch.pi * 587 * time)])  # (2, N)
    generator = torch.Generator().manual_seed(3)
    cloak = (MaskedSpectrumCloak(music, rate_hz, generator=generator) if cloak_kind == "masked"
             else GainModulationCloak(music, rate_hz, generator=generator))
    with torch.no_grad():
        cloak.randomise(generator)
        at_once = cloak.render(44_100, round(3 * 44_100))
        monkeypatch.setattr(problem, "RENDER_PIECE_SAMPLES", 5000)  # pieces cut across frames and windows
        in_pieces = cloak.render(44_100, round(3 * 44_100))
    assert np.abs(at_once).max() > 0
    np.testing.assert_allclose(in_pieces, at_once, rtol=0, atol=1e-6 * np.abs(at_once).max())
