import torch

from harmonycloak.cloak.bounds import bounded_complex, neighbour_minimum, sigmoid_between


def test_neighbour_minimum_by_hand():
    upper = torch.tensor([[5.0, 1.0, 7.0, 8.0, 9.0, -3.0]])
    # t=0: min(5, 5, 1) — the edge repeats itself; t=5: min(9, -3, -3)
    expected = torch.tensor([[1.0, 1.0, 1.0, 7.0, -3.0, -3.0]])
    assert torch.equal(neighbour_minimum(upper), expected)


def test_neighbour_minimum_spreads_minus_infinity_to_neighbours_only():
    upper = torch.tensor([0.0, 0.0, 0.0, -torch.inf, 0.0, 0.0, 0.0])
    assert torch.isinf(neighbour_minimum(upper)).tolist() == [False, False, True, True, True, False, False]


def test_sigmoid_between_stays_inside_for_extreme_parameters():
    lower, upper = torch.tensor([-10.0, 3.0]), torch.tensor([20.0, 3.5])
    for value in (-1e4, -5.0, 0.0, 5.0, 1e4):
        bounded = sigmoid_between(torch.full((2,), value), lower, upper)
        assert torch.all(bounded >= lower) and torch.all(bounded <= upper)
    assert torch.allclose(sigmoid_between(torch.zeros(2), lower, upper), (lower + upper) / 2)


def test_bounded_complex_magnitude_is_under_the_bound_and_keeps_the_direction():
    generator = torch.Generator().manual_seed(0)
    parameter = torch.randn(1000, 2, generator=generator) * 10
    parameter[0] = 0.0
    bound = torch.rand(1000, generator=generator)
    value = bounded_complex(parameter, bound)
    assert torch.all(value.abs() <= bound * (1 + 1e-6))
    assert value[0] == 0
    # the phase is the parameter's own angle
    angle = torch.atan2(parameter[1:, 1], parameter[1:, 0])
    assert torch.allclose(torch.angle(value[1:]), angle, atol=1e-4)
    # tanh(r): a parameter of radius 1 gives tanh(1) of the bound
    unit = bounded_complex(torch.tensor([[0.6, 0.8]]), torch.tensor([2.0]))
    assert abs(unit.abs().item() - 2 * torch.tanh(torch.tensor(1.0)).item()) < 1e-6
