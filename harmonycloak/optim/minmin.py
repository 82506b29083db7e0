"""The bi-level min-min optimisation of error-minimizing noise (paper Eq. 1, 5, 8, 9).

    min_θ E[ min_δ L_gen(f_θ(x + δ)) ] + α Σ_m w^m ‖δ^m‖₂        subject to the cloak's bounds

One loop serves both settings and every model family:

* **white-box**: the bag holds the one model the defender knows; each round trains it on the
  protected data (outer step), then PGD lowers its loss on x + δ (inner step).
* **black-box** (§4.2): each round samples Q models from a bag of randomly initialised
  surrogates. Meta-train: PGD on the average of the first Q−1 models' losses (Eq. 8, with
  the gradient scaled by 1/Q as Eq. 9 prints it). Meta-test: further PGD steps on the
  divergence between the last model's output distribution and the clean music's
  (`objectives.output_divergence`), a loss that reads only that model's outputs.

The bounds are the cloak's business: it maps unconstrained parameters into the allowed
range (a sigmoid between the hearing threshold and the music's level, or a magnitude under
the masking threshold), so a PGD step here is a signed-gradient step on those parameters
and the projection is implicit.

Units. The paper adds a loss and a norm whose scales depend on the model and the data
representation, so its α = 0.30 means nothing for another model. Here both terms are made
dimensionless before they are added: each model's L_gen on x + δ is divided by its L_gen on
the clean x of the same batch (a positive constant for the inner problem, so the minimiser
of L_gen alone is unchanged), and the problem states ‖δ^m‖ relative to the music's own
norm (see `CloakProblem.protected_batch`). α = 0.30 then reads: spending a noise as strong
as the music must buy at least a 30 % lower loss. The meta-test divergence is divided by
its value on clean input the same way.

A round ends with a check: the loop stops once the meta-train models' loss on protected
data falls under `stop_loss` or stops falling by `min_relative_improvement`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.optim.objectives import ErrorMinimising, Objective, generative_losses, output_divergence


class CloakProblem(Protocol):
    """What the optimiser needs from the data and the noise parameterisation."""

    num_segments: int

    def noise_parameters(self) -> list[Tensor]:
        """The unconstrained tensors PGD steps (leaf tensors with requires_grad)."""

    def protected_batch(self, segment_ids: Tensor) -> tuple[Tensor, Tensor]:
        """(model inputs of x + δ (B, ...), dimensionless regulariser Σ_m w^m R(δ^m, x^m) per segment (B,)).

        R measures the noise against the music, 1 when as strong as the music (audio: the power
        ratio ‖δ‖²/‖x‖², see `cloak.problem`)."""

    def clean_batch(self, segment_ids: Tensor) -> Tensor:
        """Model inputs of the clean x for these segments, (B, ...)."""


@dataclass(frozen=True)
class MinMinConfig:
    mode: str = "blackbox"  # "whitebox" (one known model) or "blackbox" (a bag of surrogates, §4.2)
    pgd_steps: int = 20  # inner PGD iterations per batch and round (paper §5.1)
    # Signed-gradient step on the cloak's unconstrained parameters (sigmoid/tanh logits). The
    # paper's 0.001 is a step on the waveform itself; on logits it would leave the noise where
    # it started, so the step is stated in logit units.
    pgd_step_size: float = 0.25
    meta_test_steps: int = 5  # black-box: PGD iterations on the divergence loss of model Q
    alpha: float = 0.30  # weight of Σ_m w^m ‖δ^m‖₂, both terms dimensionless (paper §5.1: 0.30 for audio)
    outer_learning_rate: float = 0.025  # SGD on the surrogates (paper §5.1)
    outer_momentum: float = 0.9  # (paper §5.1)
    outer_epochs_per_round: int = 1  # passes of SGD over the protected segments per round
    models_per_round: int = 7  # Q: surrogates sampled per black-box round (paper §5.1)
    max_rounds: int = 3  # upper bound on outer/inner alternations
    stop_loss: float = 0.0  # stop once the protected loss is below this
    min_relative_improvement: float = 0.02  # stop once a round lowers the loss by less than this share
    batch_segments: int = 16  # segments per PGD batch (16: 14 % less time per segment than 8, one thread)

    def __post_init__(self) -> None:
        if self.mode not in ("whitebox", "blackbox"):
            raise SettingsError(f"mode must be 'whitebox' or 'blackbox', not '{self.mode}'")
        if self.pgd_steps < 1 or self.max_rounds < 1 or self.batch_segments < 1:
            raise SettingsError("pgd_steps, max_rounds and batch_segments must be at least 1")


@dataclass
class MinMinHistory:
    """What happened, round by round; losses are means over segments."""

    protected_loss: list[float] = field(default_factory=list)  # the objective on x + δ (1 on clean music), after PGD
    divergence: list[float] = field(default_factory=list)  # black-box meta-test divergence, after PGD
    sampled_models: list[list[int]] = field(default_factory=list)  # bag indices per round
    stop_reason: str = ""


ProgressCallback = Callable[[int, int], None]  # (units done, units in total)


def optimise_noise(
    problem: CloakProblem,
    bag: Sequence[GenerativeModel],
    config: MinMinConfig,
    generator: torch.Generator,
    progress: ProgressCallback | None = None,
    objective: Objective | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> MinMinHistory:
    """Run the loop for `objective` (the paper's error-minimising one when None); the problem's
    noise parameters and, when the objective trains them, the models are updated in place.

    `transform` (`optim.eot.Transformations`) replaces every protected batch before a model reads
    it, in the outer and the inner steps: the noise is optimised for what survives it."""
    heard = transform or (lambda inputs: inputs)
    objective = objective or ErrorMinimising(blackbox=config.mode == "blackbox")
    if objective.needs_models and not bag:
        raise SettingsError(f"the objective '{objective.name}' needs at least one model")
    if config.mode == "blackbox" and objective.meta_test and len(bag) < 2:
        raise SettingsError("black-box mode needs a bag of at least 2 surrogates")
    optimisers = [torch.optim.SGD(m.parameters(), lr=config.outer_learning_rate, momentum=config.outer_momentum)
                  for m in bag] if objective.trains_models else []
    parameters = problem.noise_parameters()
    num_batches = -(-problem.num_segments // config.batch_segments)
    with_meta_test = config.mode == "blackbox" and objective.meta_test
    inner_steps = config.pgd_steps + (config.meta_test_steps if with_meta_test else 0)
    total_units, done_units = config.max_rounds * num_batches * inner_steps, 0
    history = MinMinHistory()

    for _ in range(config.max_rounds):
        sampled = _sample_models(len(bag), config, generator) if bag else []
        history.sampled_models.append(sampled)
        meta_train = [bag[i] for i in (sampled[:-1] if with_meta_test else sampled)]
        meta_test = bag[sampled[-1]] if with_meta_test else None

        # Outer minimisation over θ: the surrogates learn from the protected data as it stands.
        for _ in range(config.outer_epochs_per_round if objective.trains_models else 0):
            for segment_ids in _batches(problem.num_segments, config.batch_segments, generator):
                with torch.no_grad():
                    inputs = heard(problem.protected_batch(segment_ids)[0])
                for index in sampled:
                    bag[index].training_step(inputs, optimisers[index])

        # Inner minimisation over δ, batch by batch (the models frozen, unless the objective reads their gradients).
        trainable = [[p.requires_grad for p in model.parameters()] for model in bag]
        for model in bag if not objective.reads_model_gradients else ():
            model.requires_grad_(False)
        round_loss, round_divergence = 0.0, 0.0
        for segment_ids in _batches(problem.num_segments, config.batch_segments, generator):
            clean = problem.clean_batch(segment_ids)
            reference = objective.reference(meta_train, clean, segment_ids)
            for _ in range(config.pgd_steps):
                inputs, regulariser = problem.protected_batch(segment_ids)
                loss = _objective_step(objective, meta_train, heard(inputs), reference, parameters,
                                       config.alpha * regulariser, config.pgd_step_size)  # (B,)
                done_units += 1
                if progress:
                    progress(done_units, total_units)
            round_loss += loss.mean().item() * len(segment_ids)
            if meta_test is not None:
                with torch.no_grad():
                    clean_divergence = output_divergence(meta_test, clean, clean).clamp(min=1e-12)
                for _ in range(config.meta_test_steps):
                    inputs, regulariser = problem.protected_batch(segment_ids)
                    divergence = output_divergence(meta_test, heard(inputs), clean)
                    objective_value = divergence / clean_divergence + config.alpha * regulariser
                    _signed_step(parameters, objective_value.mean(), config.pgd_step_size)
                    done_units += 1
                    if progress:
                        progress(done_units, total_units)
                round_divergence += divergence.mean().item() * len(segment_ids)
        for model, flags in zip(bag, trainable):  # as they were: a model's own frozen parts stay frozen
            for parameter, flag in zip(model.parameters(), flags):
                parameter.requires_grad_(flag)

        history.protected_loss.append(round_loss / problem.num_segments)
        if meta_test is not None:
            history.divergence.append(round_divergence / problem.num_segments)
        history.stop_reason = _stop_reason(history.protected_loss, config)
        if history.stop_reason:
            break
    if not history.stop_reason:
        history.stop_reason = f"reached max_rounds={config.max_rounds}"
    if progress:
        progress(total_units, total_units)
    return history


def mean_generative_loss(models: Sequence[GenerativeModel], batches: Callable[[Tensor], Tensor], num_segments: int,
                         batch_segments: int = 8) -> float:
    """Mean L_gen over all segments and models, without gradients (for reports and checks)."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, num_segments, batch_segments):
            segment_ids = torch.arange(start, min(start + batch_segments, num_segments))
            losses = generative_losses(models, batches(segment_ids))
            total += torch.stack(losses).mean(dim=0).sum().item()
    return total / num_segments


def _sample_models(bag_size: int, config: MinMinConfig, generator: torch.Generator) -> list[int]:
    if config.mode == "whitebox":
        return [0]
    q = min(config.models_per_round, bag_size)
    return torch.randperm(bag_size, generator=generator)[:q].tolist()


def _batches(num_segments: int, batch_segments: int, generator: torch.Generator) -> list[Tensor]:
    """A random order of the segments cut into ⌈N / batch_segments⌉ batches of near-equal size.

    Near-equal rather than full batches and a remainder: a last batch of one segment would
    break models whose training step normalises over the batch (BatchNorm in MuseGAN).
    """
    order = torch.randperm(num_segments, generator=generator)
    return list(order.tensor_split(-(-num_segments // batch_segments)))


def _objective_step(objective: Objective, models: Sequence[GenerativeModel], protected: Tensor, reference,
                    parameters: list[Tensor], penalty: Tensor, step_size: float) -> Tensor:
    """One PGD step on the mean of `objective`'s loss + `penalty` (both (B,)); returns the loss (B,), detached.

    An objective with `model_terms` is differentiated in `protected` one model at a time, each
    model's graph freed before the next is read; the parameters' gradient is then that of
    ⟨protected, Σ_q ∂term_q/∂protected⟩, the same as the summed loss's."""
    model_terms = getattr(objective, "model_terms", None)
    if model_terms is None:
        loss = objective.loss(models, protected, reference)
        _signed_step(parameters, (loss + penalty).mean(), step_size)
        return loss.detach()
    heard = protected.detach().requires_grad_()
    loss = torch.zeros(protected.shape[0], dtype=protected.dtype, device=protected.device)
    gradient = torch.zeros_like(protected)
    for term in model_terms(models, heard, reference):
        (term_gradient,) = torch.autograd.grad(term.mean(), heard, allow_unused=True)
        if term_gradient is not None:
            gradient += term_gradient
        loss += term.detach()
    _signed_step(parameters, (protected * gradient).sum() + penalty.mean(), step_size)
    return loss


def _signed_step(parameters: list[Tensor], objective: Tensor, step_size: float) -> None:
    """One PGD step: parameters ← parameters − step · sign(∇ objective)."""
    gradients = torch.autograd.grad(objective, parameters, allow_unused=True)
    with torch.no_grad():
        for parameter, gradient in zip(parameters, gradients):
            if gradient is None:
                continue
            if gradient.is_sparse:  # the frames a batch read (the masked cloak's): their sum per frame, signed
                gradient = gradient.coalesce()
                signed = torch.sparse_coo_tensor(gradient.indices(), gradient.values().sign_(), gradient.shape,
                                                 check_invariants=False, is_coalesced=True)
                parameter.add_(signed, alpha=-step_size)
            else:  # signed in place: a long song's cloak holds hundreds of MB of parameters
                # (unless the gradient is one value broadcast, as a sum's is: its elements share memory)
                parameter.add_(gradient.sign_() if gradient.is_contiguous() else gradient.sign(), alpha=-step_size)


def _stop_reason(losses: list[float], config: MinMinConfig) -> str:
    if losses[-1] < config.stop_loss:
        return f"protected loss {losses[-1]:.4g} fell under stop_loss={config.stop_loss}"
    if len(losses) >= 2 and losses[-2] > 0:
        improvement = (losses[-2] - losses[-1]) / losses[-2]
        if improvement < config.min_relative_improvement:
            return f"protected loss stopped falling (last round improved it by {improvement:.1%})"
    return ""
