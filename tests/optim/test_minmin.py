import math

import pytest
import torch
from torch import Tensor

from harmonycloak.errors import SettingsError
from harmonycloak.models.bag import build_audio_bag
from harmonycloak.models.registry import build_model
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.optim.objectives import output_divergence


class AdditiveProblem:
    """Test-only problem: δ = bound · tanh(u), added to fixed segments of a melody."""

    def __init__(self, segments: Tensor, bound: float = 0.05):
        self.segments = segments
        self.bound = bound
        self.parameter = torch.zeros_like(segments, requires_grad=True)

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    def noise_parameters(self):
        return [self.parameter]

    def protected_batch(self, ids):
        noise = self.bound * torch.tanh(self.parameter[ids])
        return self.segments[ids] + noise, (noise.square().mean(dim=-1) + 1e-20).sqrt()

    def clean_batch(self, ids):
        return self.segments[ids]


def melody_segments(count: int = 6, seconds: float = 0.64) -> Tensor:
    time = torch.arange(round(count * seconds * 16_000)) / 16_000
    notes = torch.tensor([262.0, 330.0, 392.0, 494.0, 440.0])
    return (0.3 * torch.sin(2 * math.pi * notes[(time * 5).long() % 5] * time)).reshape(count, -1)


def test_white_box_min_min_makes_the_protected_data_easier_than_the_clean_data():
    problem = AdditiveProblem(melody_segments())
    model = build_model("ar-transformer", "tiny", seed=0)
    config = MinMinConfig(mode="whitebox", pgd_steps=10, pgd_step_size=0.5, max_rounds=3, batch_segments=3,
                          min_relative_improvement=-1.0)
    history = optimise_noise(problem, [model], config, torch.Generator().manual_seed(0))
    assert len(history.protected_loss) == 3
    clean = mean_generative_loss([model], problem.clean_batch, problem.num_segments)
    protected = mean_generative_loss([model], lambda ids: problem.protected_batch(ids)[0], problem.num_segments)
    assert protected < 0.8 * clean  # error-minimizing: the model finds the protected version easy


def test_black_box_runs_meta_train_and_meta_test_and_is_deterministic():
    def run():
        problem = AdditiveProblem(melody_segments(4))
        bag = build_audio_bag(10, seed=0, tiny=True)
        config = MinMinConfig(mode="blackbox", pgd_steps=2, meta_test_steps=1, max_rounds=2, batch_segments=4,
                              min_relative_improvement=-1.0)
        return problem, optimise_noise(problem, bag, config, torch.Generator().manual_seed(7))

    (problem_a, history_a), (problem_b, history_b) = run(), run()
    assert [len(s) for s in history_a.sampled_models] == [7, 7]
    assert len(history_a.divergence) == 2
    assert history_a.sampled_models == history_b.sampled_models
    assert torch.equal(problem_a.parameter, problem_b.parameter)
    assert problem_a.parameter.abs().sum() > 0


def test_stops_when_the_loss_stops_falling():
    problem = AdditiveProblem(melody_segments(2), bound=0.0)  # no room: the noise cannot help
    model = build_model("ar-gru", "tiny", seed=0)
    config = MinMinConfig(mode="whitebox", pgd_steps=1, max_rounds=20, outer_learning_rate=0.0, batch_segments=2)
    history = optimise_noise(problem, [model], config, torch.Generator().manual_seed(0))
    assert len(history.protected_loss) == 2 and "stopped falling" in history.stop_reason


def test_progress_reaches_its_total():
    calls = []
    problem = AdditiveProblem(melody_segments(2))
    config = MinMinConfig(mode="whitebox", pgd_steps=3, max_rounds=2, batch_segments=1, min_relative_improvement=-1.0)
    optimise_noise(problem, [build_model("ar-tcn", "tiny")], config, torch.Generator(), lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12) and [d for d, _ in calls] == sorted(d for d, _ in calls)


class FixedOutputs(torch.nn.Module):
    """predict() returns set tensors: the prediction for 'protected' input, the target for 'clean'."""

    def __init__(self, prediction: Tensor, target: Tensor):
        super().__init__()
        self.prediction, self.target = prediction, target

    def features(self, inputs):
        return inputs

    def predict(self, features):
        return (self.prediction, self.target) if features == "protected" else (self.target, self.target)


def test_output_divergence_is_the_gaussian_kl_of_per_dimension_moments():
    generator = torch.Generator().manual_seed(0)
    prediction = 2.0 + 0.5 * torch.randn(3, 200, 4, generator=generator)
    target = -1.0 + 1.5 * torch.randn(3, 200, 4, generator=generator)
    value = output_divergence(FixedOutputs(prediction, target), "protected", "clean", eps=0.0)
    # independent reference: torch.distributions' closed-form KL of the fitted normals
    p = torch.distributions.Normal(prediction.mean(1), prediction.std(1, unbiased=False))
    c = torch.distributions.Normal(target.mean(1), target.std(1, unbiased=False))
    assert torch.allclose(value, torch.distributions.kl_divergence(p, c).mean(-1), rtol=1e-4)
    same = output_divergence(FixedOutputs(target, target), "protected", "clean", eps=0.0)
    assert torch.allclose(same, torch.zeros(3), atol=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError):
        MinMinConfig(mode="greybox")
    with pytest.raises(SettingsError, match="at least 2"):
        optimise_noise(AdditiveProblem(melody_segments(1)), [build_model("ar-gru", "tiny")], MinMinConfig(),
                       torch.Generator())


@pytest.mark.parametrize("num_segments, batch_segments, expected_sizes", [
    (9, 8, [5, 4]),  # not [8, 1]: a batch of one breaks BatchNorm in training mode
    (16, 8, [8, 8]),
    (3, 8, [3]),
    (17, 4, [4, 4, 3, 3, 3]),
])
def test_batches_cover_every_segment_once_in_near_equal_sizes(num_segments, batch_segments, expected_sizes):
    from harmonycloak.optim.minmin import _batches

    batches = _batches(num_segments, batch_segments, torch.Generator().manual_seed(0))
    assert sorted(len(batch) for batch in batches) == sorted(expected_sizes)
    assert sorted(torch.cat(batches).tolist()) == list(range(num_segments))


def test_a_signed_step_moves_every_parameter_by_the_step_against_its_gradient_s_sign():
    from harmonycloak.optim.minmin import _signed_step

    broadcast = torch.zeros(2, 3, requires_grad=True)  # a sum's gradient is one value broadcast over it
    dense = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    _signed_step([broadcast, dense], broadcast.sum() + (dense**2).sum(), 0.25)
    assert torch.equal(broadcast.detach(), torch.full((2, 3), -0.25))
    assert torch.equal(dense.detach(), torch.tensor([0.75, -1.75, 0.25]))  # 2·d has the sign of d


def test_a_signed_step_on_a_sparse_gradient_moves_only_the_rows_it_holds_by_the_sign_of_their_sum():
    from harmonycloak.optim.minmin import _signed_step

    class RowsRead(torch.autograd.Function):  # rows 1 and 3 read, row 3 twice: a sparse gradient
        @staticmethod
        def forward(ctx, parameter):
            return parameter[[1, 3, 3]]

        @staticmethod
        def backward(ctx, gradient):
            return torch.sparse_coo_tensor(torch.tensor([[1, 3, 3]]), gradient, (5, 2), check_invariants=False)

    parameter = torch.zeros(5, 2, requires_grad=True)
    weights = torch.tensor([[2.0, -1.0], [1.0, 1.0], [-3.0, 0.5]])  # row 3's sums: −2 and +1.5
    _signed_step([parameter], (RowsRead.apply(parameter) * weights).sum(), 0.25)
    expected = torch.zeros(5, 2)
    expected[1] = torch.tensor([-0.25, 0.25])
    expected[3] = torch.tensor([0.25, -0.25])
    assert torch.equal(parameter.detach(), expected)


def test_an_objective_read_model_by_model_takes_the_summed_loss_s_step_and_frees_each_model_s_graph():
    from harmonycloak.optim.minmin import _objective_step, _signed_step

    weights = [torch.tensor([1.0, -2.0, 3.0, -4.0]), torch.tensor([-3.0, 1.0, -2.0, 5.0])]
    freed = []

    class TwoModels:  # loss = Σ_q Σ_i w_q,i · x_i²: each "model" a term of its own
        def model_terms(self, models, protected, reference):
            previous = None
            for w in weights:
                term = (w * protected.square()).sum(-1)
                yield term
                if previous is not None:
                    try:
                        torch.autograd.grad(previous.sum(), protected, retain_graph=True)
                        freed.append(False)
                    except RuntimeError:  # its graph is gone: the loop freed it before reading the next
                        freed.append(True)
                previous = term

        def loss(self, models, protected, reference):
            return sum(self.model_terms(models, protected, reference))

    def cloak():
        return torch.tensor([0.5, 1.0, -1.5, 2.0], requires_grad=True)

    by_model, summed = cloak(), cloak()
    penalty = lambda p: (0.1 * p).sum()[None]  # noqa: E731
    _signed_step([summed], (TwoModels().loss([], (summed * 2.0)[None], None) + penalty(summed)).mean(), 0.1)
    assert freed == [False]  # summed, every model's graph is held until the step
    freed.clear()
    loss = _objective_step(TwoModels(), [], (by_model * 2.0)[None], None, [by_model], penalty(by_model), 0.1)
    assert torch.equal(by_model.detach(), summed.detach())
    # ∂/∂p of Σ_q w_q·(2p)² + 0.1 p = 8 (w_1 + w_2) p + 0.1: signs −, −, −, + at p = (0.5, 1, −1.5, 2)
    assert torch.equal(by_model.detach(), torch.tensor([0.6, 1.1, -1.4, 1.9]))
    assert torch.allclose(loss, torch.tensor([4 * (-2 * 0.25 - 1 * 1 + 1 * 2.25 + 1 * 4)]))
    assert freed == [True]
