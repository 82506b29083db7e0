"""A small neural audio codec: strided-convolution autoencoder with residual vector quantisation.

The SoundStream / EnCodec recipe at a size that trains on a CPU (Zeghidour et al.,
"SoundStream: An End-to-End Neural Audio Codec", 2021; Défossez et al., "High Fidelity
Neural Audio Compression", 2022), without the adversarial losses:

* encoder: a convolution, then per stage a residual unit and a strided convolution
  (strides 2, 4, 5, 8: 320 samples per frame, 50 frames/s at 16 kHz), then a projection to
  the latent size D;
* residual vector quantiser (RVQ): K codebooks of V codes; codebook k quantises what the
  codebooks before it left over, r_{k+1} = r_k − e_k[argmin_v ‖r_k − e_k[v]‖²]; the
  quantised latent is Σ_k e_k[i_k]. Codebooks follow their assigned vectors by exponential
  moving averages (van den Oord et al., "Neural Discrete Representation Learning", 2017,
  appendix), and a code left unused is restarted on a latent of the batch, as SoundStream
  does;
* decoder: the mirror image, transposed convolutions;
* loss: multi-resolution STFT loss (L1 of magnitudes and of log magnitudes at FFT sizes 256,
  512 and 1024) plus β ‖z − sg(q)‖² (commitment); the encoder sees the decoder's gradient
  through the straight-through estimator z + sg(q − z).

As an attacker's model (the interface of `optim.objectives`), the codec's generative loss is
its reconstruction loss per example; it is differentiable with respect to the waveform
through the encoder and the straight-through quantiser. It is deterministic (no sampling).

Shapes: B batch, N samples, T' latent frames (N / 320), D latent size, K codebooks, V codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend
from harmonycloak.models.interface import AudioModelIdentity, GenerativeTraining
from harmonycloak.settings import WORKING_RATE_HZ


@dataclass(frozen=True)
class CodecConfig:
    family: str = "codec"  # registry family
    sample_rate_hz: int = WORKING_RATE_HZ  # the working rate
    channels: tuple[int, ...] = (16, 32, 64, 128, 128)  # encoder widths: input conv, then after each stride
    strides: tuple[int, ...] = (2, 4, 5, 8)  # downsampling per stage; their product is samples per frame
    latent_dim: int = 64  # D
    codebooks: int = 4  # K
    codebook_size: int = 256  # V
    commitment: float = 0.25  # β of the commitment loss
    ema_decay: float = 0.99  # codebook moving-average decay
    restart_threshold: float = 0.1  # a code whose average use per step falls below this is restarted
    stft_sizes: tuple[int, ...] = (256, 512, 1024)  # FFT sizes of the multi-resolution STFT loss


class _ResidualUnit(nn.Module):
    """x + conv1x1(ELU(conv3(ELU(x)))): (B, C, N) → (B, C, N)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(F.elu(self.conv(F.elu(x))))


class CodecEncoder(nn.Module):
    """Waveform (B, N) → latents (B, D, N / hop)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        widths = config.channels
        layers: list[nn.Module] = [nn.Conv1d(1, widths[0], 7, padding=3)]
        for stride, width_in, width_out in zip(config.strides, widths[:-1], widths[1:]):
            layers += [_ResidualUnit(width_in), nn.ELU(),
                       nn.Conv1d(width_in, width_out, 2 * stride, stride=stride, padding=stride // 2 + stride % 2)]
        layers += [nn.ELU(), nn.Conv1d(widths[-1], config.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        return self.layers(waveform[:, None])


class CodecDecoder(nn.Module):
    """Latents (B, D, T') → waveform (B, T' · hop)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        widths = config.channels[::-1]
        layers: list[nn.Module] = [nn.Conv1d(config.latent_dim, widths[0], 7, padding=3)]
        for stride, width_in, width_out in zip(config.strides[::-1], widths[:-1], widths[1:]):
            layers += [nn.ELU(), nn.ConvTranspose1d(width_in, width_out, 2 * stride, stride=stride,
                                                    padding=stride // 2 + stride % 2, output_padding=stride % 2),
                       _ResidualUnit(width_out)]
        layers += [nn.ELU(), nn.Conv1d(widths[-1], 1, 7, padding=3)]
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        return self.layers(latents)[:, 0]


def nearest_codes(residual: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest code (squared Euclidean) for every vector: (..., D), (V, D) → (...,) int64."""
    distances = (residual.square().sum(-1, keepdim=True) - 2 * residual @ codebook.T + codebook.square().sum(-1))
    return distances.argmin(dim=-1)


class ResidualVectorQuantizer(nn.Module):
    """K codebooks quantising residuals in turn; EMA codebook updates in training mode."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        shape = (config.codebooks, config.codebook_size, config.latent_dim)
        self.register_buffer("codebooks", torch.randn(shape) * 0.1)
        self.register_buffer("ema_counts", torch.ones(config.codebooks, config.codebook_size))
        self.register_buffer("ema_sums", self.codebooks.clone())

    def quantize(self, latents: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Latents (B, T', D) → (quantised (B, T', D), codes (B, T', K), residuals each (B, T', D)).

        No gradient flows through the code choice; the caller applies the straight-through estimator.
        """
        residual, quantized, codes, residuals = latents, torch.zeros_like(latents), [], []
        for k in range(self.config.codebooks):
            residuals.append(residual)
            index = nearest_codes(residual.detach(), self.codebooks[k])
            chosen = self.codebooks[k][index]
            quantized = quantized + chosen
            residual = residual - chosen
            codes.append(index)
        return quantized, torch.stack(codes, dim=-1), residuals

    def lookup(self, codes: Tensor) -> Tensor:
        """Codes (B, T', K) → quantised latents (B, T', D): Σ_k e_k[i_k]."""
        return sum(self.codebooks[k][codes[..., k]] for k in range(codes.shape[-1]))

    @torch.no_grad()
    def update(self, residuals: list[Tensor], codes: Tensor, generator: torch.Generator) -> None:
        """EMA step of every codebook towards the residuals assigned to it; restart unused codes."""
        decay, size = self.config.ema_decay, self.config.codebook_size
        for k, residual in enumerate(residuals):
            flat, index = residual.reshape(-1, residual.shape[-1]), codes[..., k].reshape(-1)
            one_hot = F.one_hot(index, size).to(flat.dtype)  # (B·T', V)
            self.ema_counts[k].mul_(decay).add_(one_hot.sum(0), alpha=1 - decay)
            self.ema_sums[k].mul_(decay).add_(one_hot.T @ flat, alpha=1 - decay)
            self.codebooks[k].copy_(self.ema_sums[k] / self.ema_counts[k].clamp_min(1e-5)[:, None])
            dead = self.ema_counts[k] < self.config.restart_threshold
            if dead.any():
                picks = torch.randint(flat.shape[0], (int(dead.sum()),), generator=generator)
                self.codebooks[k][dead] = flat[picks]
                self.ema_sums[k][dead] = flat[picks]
                self.ema_counts[k][dead] = 1.0


def multi_resolution_stft_loss(estimate: Tensor, target: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Per example (B,): Σ over FFT sizes of mean |‖S‖ − ‖Ŝ‖| + mean |log ‖S‖ − log ‖Ŝ‖| (Hann, hop n/4)."""
    total = torch.zeros(estimate.shape[0], device=estimate.device)
    for size in sizes:
        window = torch.hann_window(size, device=estimate.device)
        spectra = [torch.stft(x, size, size // 4, window=window, return_complex=True).abs() for x in (estimate, target)]
        total = total + (spectra[0] - spectra[1]).abs().mean(dim=(1, 2))
        total = total + ((spectra[0] + 1e-5).log() - (spectra[1] + 1e-5).log()).abs().mean(dim=(1, 2))
    return total


class CodecModel(AudioModelIdentity, GenerativeTraining, nn.Module):
    """Encoder + RVQ + decoder; see the module docstring."""

    LOSS_DESCRIPTION = "multi-resolution STFT reconstruction loss + commitment, per example"

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.hop = 1
        for stride in config.strides:
            self.hop *= stride
        self.encoder = CodecEncoder(config)
        self.quantizer = ResidualVectorQuantizer(config)
        self.decoder = CodecDecoder(config)
        self.mel = LogMelFrontend(FrontendConfig(sample_rate_hz=config.sample_rate_hz))
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation of every convolution, zero biases, residual branches started small.

        With PyTorch's default initialisation the signal shrinks about threefold per layer, so
        that after the fifteen layers of the encoder the latents are almost the biases alone
        and the decoder learns to ignore them (an output that does not depend on the input).
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, _ResidualUnit):
                module.mix.weight.data.mul_(0.1)

    @property
    def sample_rate_hz(self) -> int:
        return self.config.sample_rate_hz

    @property
    def feature_key(self) -> object:
        """The codec reads the waveform itself."""
        return ("waveform",)

    def features(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → the same waveform cut to whole frames (B, N − N mod hop)."""
        return waveform[:, : waveform.shape[1] - waveform.shape[1] % self.hop]

    def encode(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → continuous latents (B, T', D), differentiable."""
        return self.encoder(self.features(waveform)).transpose(1, 2)

    def tokens(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → codes (B, T', K), int64."""
        with torch.no_grad():
            return self.quantizer.quantize(self.encode(waveform))[1]

    def decode_tokens(self, codes: Tensor) -> Tensor:
        """Codes (B, T', K) → waveform (B, T' · hop)."""
        return self.decoder(self.quantizer.lookup(codes).transpose(1, 2))

    def reconstruct(self, waveform: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction (B, N'), commitment loss (B,), codes (B, T', K)); gradients reach the waveform."""
        latents = self.encode(waveform)
        quantized, codes, residuals = self.quantizer.quantize(latents)
        commitment = (latents - quantized.detach()).square().mean(dim=(1, 2))
        straight_through = latents + (quantized - latents).detach()
        self._last_assignment = (residuals, codes)
        return self.decoder(straight_through.transpose(1, 2)), commitment, codes

    def loss_from_features(self, waveform: Tensor) -> Tensor:
        """Per example (B,): STFT reconstruction loss + β × commitment."""
        reconstruction, commitment, _ = self.reconstruct(waveform)
        return (multi_resolution_stft_loss(reconstruction, waveform, self.config.stft_sizes)
                + self.config.commitment * commitment)

    def generative_loss(self, waveform: Tensor) -> Tensor:
        """Per-example reconstruction loss (B,) of a waveform batch (B, N); differentiable in the waveform."""
        return self.loss_from_features(self.features(waveform))

    def predict(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        """(log-mel frames of the reconstruction, of the input), both (B, T, 64)."""
        reconstruction = self.reconstruct(waveform)[0]
        return self.mel(reconstruction), self.mel(waveform)

    def training_loss(self, waveform: Tensor, generator: torch.Generator) -> Tensor:
        """Mean loss of a batch; in training mode the codebooks then take their EMA step."""
        waveform = self.features(waveform)
        loss = self.loss_from_features(waveform).mean()
        if self.training:
            residuals, codes = self._last_assignment
            self.quantizer.update([r.detach() for r in residuals], codes, generator)
        return loss
