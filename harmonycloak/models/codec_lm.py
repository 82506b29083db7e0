"""A language model over codec tokens (MusicGen-style, scaled down), differentiable in the waveform.

Copet et al., "Simple and Controllable Music Generation" (MusicGen, 2023) model the K token
streams of a residual-VQ codec with one transformer: here, the "parallel" pattern of that
paper, in which the input at frame t is the sum of the K codebook embeddings of frame t and
K linear heads predict the K codes of frame t+1. The codec (`harmonycloak.models.codec`) is
pretrained and frozen; this model learns only the embeddings, transformer and heads.

The loss is the negative log-likelihood of the next frame's codes, in nats per code:

    L = −(1 / (T'−1) K) Σ_t Σ_k log p_θ(i_{t+1,k} | frames ≤ t)

**Gradient with respect to the waveform.** Codes are discrete; the cloak needs the loss's
gradient in the waveform. Each code is also given as a *soft assignment*: for codebook k,
a = softmax(−‖r_k − e_k[v]‖² / τ) over codes v, where r_k is the residual the codebook
quantises (the frozen encoder's latent minus the codes chosen before it). The model uses
the straight-through assignment a_st = onehot(i) + a − sg(a): its *values* are the hard codes
(the loss is exactly the hard-token NLL above) and its *gradient* is that of the soft one.
a_st enters twice: as the input (a_st @ embedding table) and as the target
(−Σ_v a_st[v] log p[v]); the residual of the next codebook subtracts a_st @ codebook.
Nothing is sampled: the loss is deterministic.

Shapes: B batch, N samples, T' codec frames (50 per second), K codebooks, V codes, D width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import _sinusoidal_positions
from harmonycloak.models.interface import AudioModelIdentity, FrozenPretrainedPart, GenerativeTraining
from harmonycloak.models.codec import CodecConfig, CodecModel

FRONT_CHUNK_EXAMPLES = 4  # examples whose codec activations a cloak's backward pass holds at once (`untrained_front`)


@dataclass(frozen=True)
class CodecLMConfig:
    family: str = "codec-lm"  # registry family
    codec: CodecConfig = field(default_factory=CodecConfig)  # the frozen codec's architecture
    width: int = 256  # D: transformer width
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads
    assignment_temperature: float = 1.0  # τ of the soft code assignment (squared latent distance units)


class CodecLanguageModel(AudioModelIdentity, FrozenPretrainedPart, GenerativeTraining, nn.Module):
    """Frozen codec + summed codebook embeddings + causal transformer + one head per codebook."""

    FROZEN_PART = "codec"
    PART_DESCRIPTION = "a codec"

    LOSS_DESCRIPTION = "next-frame codec-token negative log-likelihood, nats per code"

    def __init__(self, config: CodecLMConfig) -> None:
        super().__init__()
        self.config = config
        codec = config.codec
        self.codec = self.frozen(CodecModel(codec))
        self.embeddings = nn.Parameter(torch.randn(codec.codebooks, codec.codebook_size, config.width) * 0.02)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, dim_feedforward=4 * config.width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(config.width)
        self.heads = nn.Linear(config.width, codec.codebooks * codec.codebook_size)

    @property
    def sample_rate_hz(self) -> int:
        return self.config.codec.sample_rate_hz

    @property
    def token_hop_samples(self) -> int:
        """Samples of one codec frame at the model's rate: a crop starting on a multiple of it has
        the tokens of the song's own frames there (away from its edges); one starting elsewhere has others."""
        return self.codec.hop

    @property
    def feature_key(self) -> object:
        """The model reads the waveform itself."""
        return ("waveform",)

    def features(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → the same waveform cut to whole codec frames."""
        return self.codec.features(waveform)

    def assignments(self, waveform: Tensor) -> Tensor:
        """Straight-through code assignments (B, T', K, V): hard values, soft gradients (module doc)."""
        residual = self.codec.encode(waveform)  # (B, T', D)
        codebooks = self.codec.quantizer.codebooks
        out = []
        for k in range(codebooks.shape[0]):
            distances = (residual.square().sum(-1, keepdim=True) - 2 * residual @ codebooks[k].T
                         + codebooks[k].square().sum(-1))  # (B, T', V)
            soft = torch.softmax(-distances / self.config.assignment_temperature, dim=-1)
            hard = F.one_hot(distances.argmin(-1), codebooks.shape[1]).to(soft.dtype)
            chosen = hard + soft - soft.detach()
            out.append(chosen)
            residual = residual - chosen @ codebooks[k]
        return torch.stack(out, dim=2)

    def logits(self, assignment: Tensor) -> Tensor:
        """Assignments of frames 0..T'−2 (B, T'−1, K, V) → next-frame logits (B, T'−1, K, V)."""
        hidden = torch.einsum("btkv,kvd->btd", assignment, self.embeddings)
        steps = hidden.shape[1]
        hidden = hidden + _sinusoidal_positions(steps, hidden.shape[2], hidden.device, hidden.dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=hidden.device, dtype=hidden.dtype)
        hidden = self.output_norm(self.blocks(hidden, mask=mask, is_causal=True))
        codec = self.config.codec
        return self.heads(hidden).unflatten(-1, (codec.codebooks, codec.codebook_size))

    def predict(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        """(next-frame code probabilities, actual next-frame assignments), both (B, T'−1, K·V)."""
        assignment = self.assignments(waveform)
        probabilities = torch.softmax(self.logits(assignment[:, :-1]), dim=-1)
        return probabilities.flatten(2), assignment[:, 1:].flatten(2)

    def loss_from_features(self, waveform: Tensor) -> Tensor:
        """Per-example next-frame NLL (B,), nats per code; differentiable in the waveform."""
        return self.loss_from_assignments(self.assignments(waveform))

    def untrained_front(self, waveform: Tensor) -> Tensor:
        """What the training loss reads through the frozen codec alone, which no trained parameter
        reaches: the straight-through assignments (B, T', K, V) of a waveform batch (B, N).

        Differentiated in the waveform (a cloak's step), the codec's activations are not kept for
        the backward pass: it computes them again there, `FRONT_CHUNK_EXAMPLES` examples at a time.
        At the working rate the codec's first layers hold 16 floats per sample each, about 450 MB
        for a batch of 16 of the optimiser's segments; a chunk of 4 holds a quarter, for one more
        forward pass of the codec. Values and gradient are those of the whole batch at once (each example
        passes through the codec alone; bit for bit on this project's CPU runs); the part
        recomputed reads only the frozen codec, whose parameters nothing swaps in between."""
        if not (torch.is_grad_enabled() and waveform.requires_grad):
            return self._front(waveform)
        chunks = waveform.split(FRONT_CHUNK_EXAMPLES)
        return torch.cat([checkpoint(self._front, chunk, use_reentrant=False) for chunk in chunks])

    def _front(self, waveform: Tensor) -> Tensor:
        return self.assignments(self.features(waveform))

    def training_loss_after_front(self, assignment: Tensor, generator: torch.Generator) -> Tensor:
        """The training loss (`training_loss`) from `untrained_front`'s assignments (nothing is drawn)."""
        return self.loss_from_assignments(assignment).mean()

    def tokens(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → the codes its training loss reads (B, T', K), int64: the hard part of
        `untrained_front`'s assignments, which `training_loss_on_tokens` reads back."""
        with torch.no_grad():
            return self._front(waveform).argmax(-1)

    def training_loss_on_tokens(self, codes: Tensor, generator: torch.Generator) -> Tensor:
        """The training loss (`training_loss`) of a batch given as its codes (B, T', K) (nothing is drawn):
        equal, up to rounding, to that of the waveforms the codes were read from."""
        assignment = F.one_hot(codes, self.config.codec.codebook_size).to(self.embeddings.dtype)
        return self.loss_from_assignments(assignment).mean()

    def loss_from_assignments(self, assignment: Tensor) -> Tensor:
        """Per-example next-frame NLL (B,) of assignments (B, T', K, V), nats per code."""
        if assignment.shape[1] < 2:
            raise SettingsError("the codec LM needs at least two codec frames (640 samples at 16 kHz)")
        log_probabilities = torch.log_softmax(self.logits(assignment[:, :-1]), dim=-1)
        return -(assignment[:, 1:] * log_probabilities).sum(-1).mean(dim=(1, 2))

    def generative_loss(self, waveform: Tensor) -> Tensor:
        """Per-example generative loss (B,) of a waveform batch (B, N)."""
        return self.loss_from_features(self.features(waveform))

    @torch.no_grad()
    def generate_tokens(self, prompt: Tensor, num_frames: int, generator: torch.Generator,
                        temperature: float = 1.0, top_k: int = 0) -> Tensor:
        """Continue codes (B, T0, K), T0 ≥ 1, by `num_frames` sampled frames → (B, T0 + num_frames, K).

        Each frame's K codes are drawn independently from the heads' softmax at `temperature`
        (0: the most likely code), keeping the `top_k` most likely codes when top_k > 0.
        """
        was_training = self.training
        self.eval()
        size = self.config.codec.codebook_size
        codes = prompt.clone()
        try:
            for _ in range(num_frames):
                assignment = F.one_hot(codes, size).float()
                logits = self.logits(assignment)[:, -1]  # (B, K, V)
                if temperature <= 0:
                    new = logits.argmax(-1)
                else:
                    logits = logits / temperature
                    if top_k > 0:
                        threshold = logits.topk(top_k, dim=-1).values[..., -1:]
                        logits = logits.masked_fill(logits < threshold, float("-inf"))
                    probabilities = torch.softmax(logits, -1).flatten(0, 1)
                    # drawn on the CPU, where `generator` lives: the same tokens on every device
                    new = torch.multinomial(probabilities.cpu(), 1, generator=generator).view(logits.shape[:2])
                    new = new.to(logits.device)
                codes = torch.cat([codes, new[:, None]], dim=1)
        finally:
            self.train(was_training)
        return codes

    @torch.no_grad()
    def generate(self, prompt_waveform: Tensor, num_frames: int, generator: torch.Generator,
                 temperature: float = 1.0, top_k: int = 0) -> Tensor:
        """Prompt waveform (B, N) → its continuation only, as a waveform (B, num_frames · 320) at 16 kHz."""
        prompt = self.codec.tokens(prompt_waveform)
        codes = self.generate_tokens(prompt, num_frames, generator, temperature, top_k)
        return self.codec.decode_tokens(codes[:, prompt.shape[1]:]).clamp(-1.0, 1.0)

