import pytest
import torch

from harmonycloak.cloak.problem import segment_starts, track_weights


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
