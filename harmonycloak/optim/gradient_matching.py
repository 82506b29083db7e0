"""Gradient alignment: training on the protected song takes a step the defender chose.

What protection has to achieve is a statement about a training step: after training on the
released x + δ, the model should fit the clean x no better (PS). These objectives work on that
step directly, through the parameter gradient of each model's training loss,

    g(v) = ∇_θ L_train(θ; v).

  gradient-matching  a step on x + δ is a step toward a decoy of the song: per model,
                         loss = 1 − cos( g(x + δ), g(decoy(x)) )
                     which reads 1 when the two steps are orthogonal and 0 when they agree.
                     The decoy is the song three semitones lower and slower (read at
                     2^(−3/12) of its speed): the same music moved where the clean song is not.
  reverse-gradient   a step on x + δ does not lower the clean song's loss, or raises it: a
                     step θ − η·g(x + δ) changes L(θ; x) by −η·⟨g(x), g(x + δ)⟩ to first
                     order, so per model
                         loss = ⟨g(x + δ), g(x)⟩ / ‖g(x)‖²
                     the change relative to a step on the clean song: 1 on the clean song,
                     0 when the step learns nothing of it, negative when the step unlearns it.
                     (The cosine with −g(x) would be stationary at δ = 0, where the two
                     gradients agree exactly, and sign steps could not leave it.)

The loss is the mean over models, the same for every segment of a batch. The models'
training losses draw at random (diffusion steps and noise, crops). Gradient matching gives
both gradients one draw, so that randomness does not enter its comparison. The reverse
gradient cannot know the draws of the attacker's steps: it averages the clean step over
`REFERENCE_DRAWS` draws, and reads x + δ under a new draw at every optimiser step, so the
noise is made for the expected step rather than for one draw.

Gradient matching differentiates a gradient (second order). The reverse gradient needs only
the derivative of the training loss along one fixed direction r of the parameters, which a
central difference gives to second order in its step h:

    ⟨g(x + δ), r⟩ = [L(θ + h·r; x + δ) − L(θ − h·r; x + δ)] / 2h + O(h²)

so its gradient in δ takes two first-order passes with the fused attention kernels, about
half the time and a fraction of the memory of differentiating through the parameter
gradient. What the loss reads through parts no trained parameter reaches (a model's
`untrained_front`: the codec LM's frozen codec) is the same in both passes: it is computed
once and read by both, which halves that part's time and memory (the codec LM's codec keeps
about 450 MB of activations for a batch of 16 of the optimiser's segments); the result is the
same up to rounding. The step moves the parameters by `FINITE_DIFFERENCE_STEP` of their norm: on the
zoo's next-frame and diffusion models, on music, the loss then agrees with the exact one to
0.1 % and its gradient in δ to a cosine of 0.997 or better (a step ten times longer errs by up
to 9 % on the loss along the curved gradient direction; ten times shorter, float32 rounding
blurs the transformer's gradient). The loss is exact, up to rounding, for a training loss
quadratic in θ.

The models are pretrained ones (the zoo's); they are not trained by the loop, and the
parameters compared are those the model trains (its own frozen parts, a codec or a
conditioner, are not).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from harmonycloak.models.interface import GenerativeModel

DECOY_SEMITONES = -3.0  # the decoy: the song this many semitones away, slower or faster alike
DRAW_SEED = 0  # gradient matching: the one random draw both gradients of a batch share
REFERENCE_DRAWS = 4  # reverse gradient: the clean step is averaged over this many draws
FINITE_DIFFERENCE_STEP = 1e-4  # reverse gradient: ±h·r moves the parameters by this share of their norm (taken as ≥ 1)


def decoy_waveform(clean: Tensor, semitones: float = DECOY_SEMITONES) -> Tensor:
    """The song read at 2^(semitones/12) of its speed: pitch and tempo moved together.

    Shapes: (B, N) → (B, N). Lower (semitones < 0) reads the first N · 2^(s/12) samples
    stretched over N; higher reads past the end, which wraps around to the segment's start.
    """
    ratio = 2.0 ** (semitones / 12.0)
    length = clean.shape[-1]
    positions = torch.arange(length, device=clean.device, dtype=torch.float64) * ratio
    left = positions.floor().long()
    fraction = (positions - left).to(clean.dtype)
    return clean[:, left % length] * (1 - fraction) + clean[:, (left + 1) % length] * fraction


def training_gradient(model: GenerativeModel, inputs: Tensor, create_graph: bool, draw_seed: int = DRAW_SEED) -> Tensor:
    """∇_θ of the model's training loss on `inputs` under the random draw `draw_seed`, over the
    parameters it trains (those that require gradients: a model's own frozen parts do not),
    flattened (P,); differentiable in the inputs when `create_graph`."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    # The math kernel of attention: the fused CPU kernels have no second derivative.
    with sdpa_kernel(SDPBackend.MATH):
        loss = model.training_loss(inputs, torch.Generator().manual_seed(draw_seed))
        gradients = torch.autograd.grad(loss, parameters, create_graph=create_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gradients, parameters)])


class _TrainingLoss(nn.Module):
    """A model's training loss as a module's forward, so that `functional_call` can swap its
    parameters; from what its `untrained_front` made of the inputs when `after_front`."""

    def __init__(self, model: GenerativeModel, after_front: bool = False) -> None:
        super().__init__()
        self.model, self.after_front = model, after_front

    def forward(self, inputs: Tensor, generator: torch.Generator) -> Tensor:
        if self.after_front:
            return self.model.training_loss_after_front(inputs, generator)
        return self.model.training_loss(inputs, generator)


def directional_training_gradient(model: GenerativeModel, inputs: Tensor, direction: Tensor, draw_seed: int) -> Tensor:
    """⟨∇_θ L_train(θ; inputs), direction⟩ under the draw `draw_seed`, a scalar differentiable in
    the inputs, by a central difference along `direction` (P,) over the parameters the model
    trains (the order of `training_gradient`'s). No parameter gradient is taken. A model with an
    `untrained_front` has it computed once for both passes (module doc)."""
    trained = [(name, p.detach()) for name, p in model.named_parameters() if p.requires_grad]
    theta_norm = torch.sqrt(sum(p.square().sum() for _, p in trained))
    step = FINITE_DIFFERENCE_STEP * theta_norm.clamp(min=1.0) / direction.norm().clamp(min=1e-30)
    pieces = direction.split([p.numel() for _, p in trained])
    front = getattr(model, "untrained_front", None)
    if front is not None:
        inputs = front(inputs)
    loss = _TrainingLoss(model, after_front=front is not None)

    def shifted(sign: float) -> Tensor:
        parameters = {f"model.{name}": p + sign * step * piece.view_as(p) for (name, p), piece in zip(trained, pieces)}
        return functional_call(loss, parameters, (inputs, torch.Generator().manual_seed(draw_seed)))

    return (shifted(1.0) - shifted(-1.0)) / (2 * step)


class _GradientAlignment:
    """What both objectives are to the loop: they read the models' parameter gradients and train nothing."""

    trains_models = False
    needs_models = True
    meta_test = False
    reads_model_gradients = True

    def loss(self, models: Sequence[GenerativeModel], protected: Tensor, reference: list[Tensor]) -> Tensor:
        """The mean over the models of their terms, per example (B,)."""
        return sum(self.model_terms(models, protected, reference))


class GradientMatching(_GradientAlignment):
    name = "gradient-matching"

    def __init__(self, semitones: float = DECOY_SEMITONES) -> None:
        self.semitones = semitones

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> list[Tensor]:
        """The decoy's gradient of every model, each (P_m,)."""
        decoy = decoy_waveform(clean, self.semitones)
        return [training_gradient(model, decoy, create_graph=False).detach() for model in models]

    def model_terms(self, models: Sequence[GenerativeModel], protected: Tensor,
                    reference: list[Tensor]) -> Iterator[Tensor]:
        """Each model's mismatch over the number of models, (B,) (the same for every segment)."""
        for model, target in zip(models, reference):
            mismatch = 1.0 - F.cosine_similarity(training_gradient(model, protected, create_graph=True), target, dim=0)
            yield (mismatch / len(models)).expand(protected.shape[0])


class ReverseGradient(_GradientAlignment):
    name = "reverse-gradient"

    def __init__(self, reference_draws: int = REFERENCE_DRAWS) -> None:
        self.reference_draws = reference_draws
        self.steps_taken = 0  # each loss reads a draw of its own: draws reference_draws, reference_draws + 1, ...
        # the models whose training loss was seen to draw nothing (two draws gave one step): their later
        # batches take one draw, the mean of equal draws being that draw, bit for bit
        self.draws_nothing: weakref.WeakSet = weakref.WeakSet()

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> list[Tensor]:
        """ḡ(x) / ‖ḡ(x)‖² of every model, ḡ the mean gradient over the reference draws, each (P_m,)."""
        references = []
        for model in models:
            draws = [training_gradient(model, clean, create_graph=False, draw_seed=0).detach()]
            for draw in range(1 if model not in self.draws_nothing else self.reference_draws, self.reference_draws):
                draws.append(training_gradient(model, clean, create_graph=False, draw_seed=draw).detach())
                if draw == 1 and torch.equal(draws[0], draws[1]):
                    self.draws_nothing.add(model)
                    break  # a loss that draws nothing: every draw gives this same step
            gradient = torch.stack(draws).mean(dim=0)
            references.append(gradient / gradient.square().sum().clamp(min=1e-30))
        return references

    def model_terms(self, models: Sequence[GenerativeModel], protected: Tensor,
                    reference: list[Tensor]) -> Iterator[Tensor]:
        """Each model's share of a step on x + δ that learns x, over the number of models, (B,) (the
        same for every segment); every model reads the draw of this step."""
        draw = self.reference_draws + self.steps_taken
        self.steps_taken += 1
        for model, target in zip(models, reference):
            learned = directional_training_gradient(model, protected, target, draw_seed=draw)
            yield (learned / len(models)).expand(protected.shape[0])
