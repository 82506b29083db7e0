"""Autoregressive generative models over log-mel frames (MusicLM/MusicGen-style, scaled down).

Each model reads a waveform, turns it into log-mel frames with a differentiable front end and
predicts every frame from the frames before it. Its generative loss (paper Eq. 3) is the error
of those predictions: the negative log-likelihood of the next frame under a unit-variance
Gaussian, up to a constant, i.e. the mean squared error. Because the front end is
differentiable, the loss has a gradient with respect to the waveform, which is what the cloak
optimises.

Three backbones of different inductive bias make the black-box bag varied: a causal
transformer, a GRU and a dilated causal convolution stack (TCN). Each also reads a sequence
in pieces (`decode`), carrying what it needs of the frames before (the transformer's keys and
values, the GRU's hidden state, the TCN's last receptive field), so that generation computes
each new frame once instead of the whole sequence again.

Shapes: B batch, N samples, T frames, F mel bands, D model width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from harmonycloak.models.frontend import FrontendConfig, LogMelAudioModel, LogMelFrontend
from harmonycloak.models.interface import GenerativeTraining


@dataclass(frozen=True)
class NextFrameConfig:
    family: str = "ar-transformer"  # one of "ar-transformer", "ar-gru", "ar-tcn"
    width: int = 64  # D: model width (transformer d_model, GRU hidden size, TCN channels)
    layers: int = 2  # transformer blocks, GRU layers or TCN blocks
    heads: int = 4  # attention heads (transformer only)
    kernel_size: int = 3  # TCN kernel size; dilations double per block (TCN only)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)


class NextFrameModel(LogMelAudioModel, GenerativeTraining, nn.Module):
    """Front end + causal backbone + linear head predicting frame t+1 from frames ≤ t."""

    def __init__(self, config: NextFrameConfig) -> None:
        super().__init__()
        self.config = config
        n_mels = config.frontend.n_mels
        self.frontend = LogMelFrontend(config.frontend)
        self.input_projection = nn.Linear(n_mels, config.width)
        self.backbone = _BACKBONES[config.family](config)
        self.output_norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, n_mels)

    def predict(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Frames (B, T, F) → (predicted frames, actual next frames), both (B, T-1, F)."""
        hidden = self.backbone(self.input_projection(frames[:, :-1]))
        return self.head(self.output_norm(hidden)), frames[:, 1:]

    def predict_next(self, frames: Tensor, state=None) -> tuple[Tensor, object]:
        """The predicted frame after `frames` (B, S, F), which follow the frames `state` stands for
        (None: they start the sequence) → (B, F), and the state after them (the backbone's
        `decode`): `predict` of the whole sequence, computed for the new frames only."""
        hidden, state = self.backbone.decode(self.input_projection(frames), state)
        return self.head(self.output_norm(hidden[:, -1])), state

    def loss_from_features(self, frames: Tensor) -> Tensor:
        """Per-example next-frame loss (B,): mean squared error over frames and bands."""
        prediction, target = self.predict(frames)
        return (prediction - target).square().mean(dim=(1, 2))

    def generative_loss(self, waveform: Tensor) -> Tensor:
        """Per-example generative loss L_gen (paper Eq. 3) of a waveform batch (B, N), shape (B,)."""
        return self.loss_from_features(self.features(waveform))


class _CausalTransformer(nn.Module):
    def __init__(self, config: NextFrameConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            config.width, config.heads, dim_feedforward=4 * config.width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, D) → (B, T, D)
        steps, width = x.shape[1], x.shape[2]
        x = x + _sinusoidal_positions(steps, width, x.device, x.dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device, dtype=x.dtype)
        return self.blocks(x, mask=mask, is_causal=True)

    def decode(self, x: Tensor, state: list[tuple[Tensor, Tensor]] | None) -> tuple[Tensor, list]:
        """`forward` of the next S positions (B, S, D) after those `state` holds → (B, S, D) and
        the state after them: each block's keys and values, (B, heads, positions, D / heads).

        The blocks' own weights, applied as `nn.TransformerEncoderLayer` applies them (pre-norm,
        ReLU, no dropout); the encoder has no way to reuse the keys and values of earlier calls.
        """
        done = 0 if state is None else state[0][0].shape[2]
        batch, steps, width = x.shape
        x = x + _sinusoidal_positions(done + steps, width, x.device, x.dtype)[done:]
        # a new position reads every earlier one and itself (needed only when several are new)
        mask = None if steps == 1 else (torch.arange(done + steps, device=x.device)[None, :]
                                        <= torch.arange(done, done + steps, device=x.device)[:, None])
        kept = []
        for index, block in enumerate(self.blocks.layers):
            attention = block.self_attn
            heads = attention.num_heads
            query, key, value = (part.unflatten(-1, (heads, width // heads)).transpose(1, 2) for part in
                                 nn.functional.linear(block.norm1(x), attention.in_proj_weight,
                                                      attention.in_proj_bias).chunk(3, dim=-1))
            if state is not None:
                key, value = torch.cat([state[index][0], key], dim=2), torch.cat([state[index][1], value], dim=2)
            kept.append((key, value))
            attended = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
            x = x + attention.out_proj(attended.transpose(1, 2).reshape(batch, steps, width))
            x = x + block.linear2(block.activation(block.linear1(block.norm2(x))))
        return x, kept


class _GRU(nn.Module):
    def __init__(self, config: NextFrameConfig) -> None:
        super().__init__()
        self.gru = nn.GRU(config.width, config.width, num_layers=config.layers, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, D) → (B, T, D)
        if x.is_cuda and not self.training and torch.is_grad_enabled():
            # cuDNN's GRU has no backward in eval mode, and the cloak differentiates the loss of a
            # model in eval mode (a loaded checkpoint, a zoo model): PyTorch's own kernels then.
            with torch.backends.cudnn.flags(enabled=False):
                return self.gru(x)[0]
        return self.gru(x)[0]

    def decode(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        """`forward` of the next positions (B, S, D) → (B, S, D) and the hidden state after them,
        (layers, B, D)."""
        return self.gru(x, state)


class _TCN(nn.Module):
    """Residual blocks of left-padded (causal) dilated convolutions, dilation 1, 2, 4, ..."""

    def __init__(self, config: NextFrameConfig) -> None:
        super().__init__()
        self.kernel_size = config.kernel_size
        self.convs = nn.ModuleList(
            nn.Conv1d(config.width, config.width, config.kernel_size, dilation=2**i) for i in range(config.layers)
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, T, D) → (B, T, D)
        h = x.transpose(1, 2)
        for conv in self.convs:
            pad = (self.kernel_size - 1) * conv.dilation[0]
            h = h + torch.nn.functional.gelu(conv(torch.nn.functional.pad(h, (pad, 0))))
        return h.transpose(1, 2)

    def decode(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        """`forward` of the next positions (B, S, D) → (B, S, D) and the inputs a later position
        still reads: the last R − 1 of them, R = 1 + (k − 1)(2^L − 1) the receptive field. Before
        the first position the convolutions read zeros, as `forward` pads them."""
        reach = (self.kernel_size - 1) * sum(conv.dilation[0] for conv in self.convs)  # R − 1
        window = x if state is None else torch.cat([state, x], dim=1)
        return self(window)[:, -x.shape[1]:], window[:, max(0, window.shape[1] - reach):]


_BACKBONES = {"ar-transformer": _CausalTransformer, "ar-gru": _GRU, "ar-tcn": _TCN}


def _sinusoidal_positions(steps: int, width: int, device, dtype) -> Tensor:
    """Fixed sinusoidal position codes (Vaswani et al. 2017), shape (steps, width)."""
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10_000.0) / width))
    codes = torch.zeros(steps, width, device=device)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate[: width // 2])
    return codes.to(dtype)
