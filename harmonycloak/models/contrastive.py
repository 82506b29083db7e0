"""A contrastive audio encoder (CLAP / MuLan-style audio tower, trained on audio pairs alone).

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision"
(CLIP, 2021), Huang et al., "MuLan: A Joint Embedding of Music Audio and Natural Language"
(2022) and Elizalde et al., "CLAP: Learning Audio Concepts From Natural Language
Supervision" (2023) train an audio encoder against a text encoder. The corpus here has no
text, so the second view is another view of the same music (Saeed et al., "Contrastive
Learning of General-Purpose Audio Representations", COLA, 2021): two crops of one clip, each
with its own gain, are a positive pair; the other clips of the batch are the negatives; the
loss is the symmetric InfoNCE of CLIP at a fixed temperature τ.

Encoder: log-mel frames (the shared front end) → convolutions over time (mel bands as
channels, stride 2 twice) → transformer blocks → mean over time → linear projection → L2
normalisation: an embedding of unit length (B, E).

**Loss per example, deterministic** (`generative_loss`, for the cloak and the benchmark): for
waveform i, view a is its first `view_fraction` of frames, view b its last; both are
embedded and

    L_i = −log( e^{a_i·b_i/τ} / (e^{a_i·b_i/τ} + Σ_j e^{a_i·n_j/τ}) )

with a *fixed* set of negatives n_j: the buffer ``negatives`` (M, E), the embeddings of M
training clips stored with the weights (`set_negatives`). No randomness: the same waveform
always gives the same loss, in either mode. Training (`training_loss`) draws crops and gains
from the trainer's generator and uses in-batch negatives.

Shapes: B batch, N samples, T frames, F mel bands, E embedding size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harmonycloak.models.audio_ar import _sinusoidal_positions
from harmonycloak.models.interface import GenerativeTraining
from harmonycloak.models.frontend import FrontendConfig, LogMelAudioModel, LogMelFrontend


@dataclass(frozen=True)
class ContrastiveConfig:
    family: str = "contrastive"  # registry family
    width: int = 128  # D: convolution and transformer width
    layers: int = 2  # transformer blocks
    heads: int = 4  # attention heads
    embedding_dim: int = 128  # E
    temperature: float = 0.1  # τ of InfoNCE
    view_fraction: float = 0.75  # each deterministic view covers this share of the frames
    negatives: int = 128  # M: fixed negatives stored with the weights
    max_gain_db: float = 6.0  # training views get a random gain in ±this
    frontend: FrontendConfig = field(default_factory=FrontendConfig)


def info_nce_with_negatives(anchor: Tensor, positive: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """Per-example InfoNCE (B,) of unit vectors: −log(e^{a·p/τ} / (e^{a·p/τ} + Σ_j e^{a·n_j/τ})).

    anchor, positive: (B, E); negatives: (M, E), the same for every example.
    """
    logits = torch.cat([(anchor * positive).sum(-1, keepdim=True), anchor @ negatives.T], dim=1) / temperature
    return torch.logsumexp(logits, dim=1) - logits[:, 0]


def symmetric_info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """CLIP's batch loss (scalar): mean cross-entropy of a_i against all b (and b_i against all a), pairs (i, i) positive."""
    return symmetric_info_nce_per_item(a, b, temperature).mean()


def symmetric_info_nce_per_item(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """CLIP's loss of each pair (B,): the mean of a_i picking b_i among all b and b_i picking a_i among all a."""
    logits = a @ b.T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels, reduction="none") + F.cross_entropy(logits.T, labels, reduction="none"))


class ContrastiveEncoder(LogMelAudioModel, GenerativeTraining, nn.Module):
    """Log-mel → conv → transformer → mean → projection → unit embedding (module docstring)."""

    LOSS_DESCRIPTION = "InfoNCE of two fixed views against the stored negatives, nats per example"

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__()
        self.config = config
        mels, width = config.frontend.n_mels, config.width
        self.frontend = LogMelFrontend(config.frontend)
        self.convs = nn.Sequential(
            nn.Conv1d(mels, width, 3, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
        )
        layer = nn.TransformerEncoderLayer(width, config.heads, dim_feedforward=4 * width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(width)
        self.projection = nn.Linear(width, config.embedding_dim)
        self.register_buffer("negatives", F.normalize(torch.randn(config.negatives, config.embedding_dim), dim=-1))

    def embed_frames(self, frames: Tensor) -> Tensor:
        """Log-mel frames (B, T, F), T ≥ 4 → unit embeddings (B, E); differentiable."""
        hidden = self.convs(frames.transpose(1, 2)).transpose(1, 2)  # (B, T/4, D)
        hidden = hidden + _sinusoidal_positions(hidden.shape[1], hidden.shape[2], hidden.device, hidden.dtype)
        hidden = self.output_norm(self.blocks(hidden)).mean(dim=1)
        return F.normalize(self.projection(hidden), dim=-1)

    def embed(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) at 16 kHz → unit embeddings (B, E): what the benchmark compares (FAD, style)."""
        return self.embed_frames(self.features(waveform))

    def views(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """The two fixed views of each example: its first and its last `view_fraction` of frames."""
        length = max(4, round(self.config.view_fraction * frames.shape[1]))
        return frames[:, :length], frames[:, frames.shape[1] - length:]

    def predict(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """(embedding of view a, embedding of view b), both (B, 1, E)."""
        first, last = self.views(frames)
        return self.embed_frames(first)[:, None], self.embed_frames(last)[:, None]

    def loss_from_features(self, frames: Tensor) -> Tensor:
        """Per-example InfoNCE (B,) of the two fixed views against the stored negatives (module doc)."""
        a, b = self.predict(frames)
        return info_nce_with_negatives(a[:, 0], b[:, 0], self.negatives, self.config.temperature)

    def generative_loss(self, waveform: Tensor) -> Tensor:
        """Per-example loss (B,) of a waveform batch (B, N); deterministic, differentiable in the waveform."""
        return self.loss_from_features(self.features(waveform))

    def training_views(self, waveform: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The two random views training reads of each waveform (B, N): crops of `view_fraction`,
        each with a random gain, as log-mel frames (B, T, F) each; drawn from `generator`."""
        frames = []
        batch, samples = waveform.shape
        length = round(self.config.view_fraction * samples)
        for _ in range(2):
            offsets = torch.randint(samples - length + 1, (batch,), generator=generator)
            gains_db = ((torch.rand(batch, 1, generator=generator) * 2 - 1) * self.config.max_gain_db).to(waveform.device)
            crops = torch.stack([waveform[i, o:o + length] for i, o in enumerate(offsets.tolist())])
            frames.append(self.features(crops * 10 ** (gains_db / 20)))
        return frames[0], frames[1]

    def training_loss(self, waveform: Tensor, generator: torch.Generator) -> Tensor:
        """Symmetric in-batch InfoNCE of two random crops (each `view_fraction` long) with random gains."""
        first, second = self.training_views(waveform, generator)
        return symmetric_info_nce(self.embed_frames(first), self.embed_frames(second), self.config.temperature)

    @torch.no_grad()
    def set_negatives(self, waveform: Tensor) -> None:
        """Store the embeddings of waveforms (M', N) as the fixed negatives (the first `negatives` of them).

        The weight files hold `negatives` of them; fewer (M' < M) serve for measurements on
        small sets, but such a model no longer loads saved weights of M negatives.
        """
        was_training = self.training
        self.eval()
        embeddings = torch.cat([self.embed(chunk) for chunk in waveform.split(16)])
        self.negatives = embeddings[: self.config.negatives].clone()
        self.train(was_training)

    def prepare_evaluation(self, sample, generator: torch.Generator) -> None:
        """Zoo trainer hook: the fixed negatives from `negatives` training crops drawn with `generator`."""
        self.set_negatives(sample(self.config.negatives, generator))
