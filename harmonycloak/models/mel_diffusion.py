"""A small mel-spectrogram diffusion model conditioned on the contrastive encoder (AudioLDM-style).

Liu et al., "AudioLDM: Text-to-Audio Generation with Latent Diffusion Models" (2023) and Chen
et al., "MusicLDM" (2024) denoise a spectrogram representation conditioned on a CLAP
embedding; Riffusion denoises spectrogram images. Here, at CPU size: the data are the shared
front end's log-mel frames (normalised by fixed constants), the denoiser is a 1-D U-Net over
time with the mel bands as channels (Ronneberger et al., "U-Net", 2015; the time-conditioned
residual blocks of Ho et al., "Denoising Diffusion Probabilistic Models", DDPM, 2020), and
the condition is the frozen contrastive encoder's embedding of the same audio
(`harmonycloak.models.contrastive`), dropped at random in training for classifier-free
guidance (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022). A model given its own
`log_floor` learns frames that read deeper than its conditioner's (100 dB of level, as public
generators' mels, against the zoo's 50 dB); the conditioner reads the same audio at its own floor
(`condition_of`, `frontend.refloor`).

Forward process (DDPM), cosine schedule of Nichol & Dhariwal ("Improved Denoising Diffusion
Probabilistic Models", 2021):

    ᾱ_t = f(t) / f(0),  f(t) = cos²(((t + 1) / S + s) / (1 + s) · π / 2),  t = 0 … S−1
    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)

(β_t = 1 − ᾱ_t / ᾱ_{t−1} is clipped at 0.999). The model predicts the velocity
v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 (Salimans & Ho, "Progressive Distillation for Fast Sampling of
Diffusion Models", 2022, as MusicLDM and Stable Audio do); the loss is ‖v − v_θ(x_t, t, c)‖²
averaged over frames and bands. Unlike ε-prediction, x̂_0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂ needs no
division by √ᾱ_t, which vanishes at the end of the schedule.

**Deterministic losses.** `generative_loss` averages the loss over `evaluation_draws` draws of
(t, ε) per example. In eval mode the draws come from a torch.Generator seeded with
`evaluation_seed` afresh at every call — stratified timesteps t_j ∈ [a + j (S − a) / J,
a + (j+1) (S − a) / J), a = `evaluation_timestep_from` · S (0: the whole schedule), and Gaussian ε —
so equal inputs give equal losses and two conditions are compared on the same draws. Measured
from the middle of the schedule on, the loss is where the model must know the music: at small t
the target v is mostly the noise ε, at large t mostly the clean frames x_0. In training mode
the draws come from the model's own stream (seeded from the build seed). `training_loss` draws
from the trainer's generator.

Sampling: DDIM with η = 0 (Song et al., "Denoising Diffusion Implicit Models", 2021) over a
few evenly spaced steps, with classifier-free guidance and the predicted x_0 clipped to the
front end's range (as DDPM's reference sampler clips it), then `audio_generation.mel_to_waveform`
(least squares + Griffin-Lim) for a waveform.

Shapes: B batch, N samples, T frames, F mel bands, E condition size, C channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harmonycloak.errors import SettingsError
from harmonycloak.models.contrastive import ContrastiveConfig, ContrastiveEncoder
from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend, refloor
from harmonycloak.models.interface import AudioModelIdentity, FrozenPretrainedPart, GenerativeTraining


@dataclass(frozen=True)
class MelDiffusionConfig:
    family: str = "mel-diffusion"  # registry family
    conditioner: ContrastiveConfig = field(default_factory=ContrastiveConfig)  # frozen encoder; its front end is used
    channels: tuple[int, ...] = (96, 144, 192)  # U-Net widths, time halved between levels
    groups: int = 8  # group-norm groups
    diffusion_steps: int = 1000  # S
    cosine_offset: float = 0.008  # s of the cosine schedule
    mel_mean: float = -0.75  # x_0 = (frames − mel_mean) / mel_std: the zoo corpus's mean log-mel value
    mel_std: float = 0.3  # and its standard deviation (0.32), rounded
    # the floor of the log-mel frames the denoiser learns (None: the conditioner's; `config_at_floor` sets it with
    # the data's normalisation there); the conditioner reads the same audio at its own floor
    log_floor: float | None = None
    condition_dropout: float = 0.1  # training: share of examples whose condition is zeroed
    evaluation_draws: int = 4  # J: (t, ε) draws per example in generative_loss
    evaluation_seed: int = 0  # seed of the eval-mode draws
    # the share of the schedule below which generative_loss draws no timestep (0: all of it; 0.5: its noisier half)
    evaluation_timestep_from: float = 0.0


# (mel_mean, mel_std) of the zoo corpus's log-mel frames at a front end's floor (80 of its clips, 10.24 s each):
# the normalisation of the denoiser's data at that floor
CORPUS_MEL_STATISTICS = {1e-5: (-0.76, 0.33), 1e-10: (-0.12, 0.41)}


def config_at_floor(config: MelDiffusionConfig, log_floor: float) -> MelDiffusionConfig:
    """`config` learning log-mel frames at `log_floor`, normalised by the corpus's statistics there."""
    known = next((floor for floor in CORPUS_MEL_STATISTICS if math.isclose(floor, log_floor)), None)
    if known is None:
        floors = ", ".join(f"{10 * math.log10(floor):g} dB" for floor in CORPUS_MEL_STATISTICS)
        raise SettingsError(f"the diffusion model knows its data's level statistics at log-mel floors of {floors} "
                            f"only, not {10 * math.log10(log_floor):g} dB")
    mean, std = CORPUS_MEL_STATISTICS[known]
    return replace(config, log_floor=known, mel_mean=mean, mel_std=std)


def cosine_alphas_cumprod(steps: int, offset: float) -> Tensor:
    """ᾱ_t for t = 0 … steps−1 (module docstring), float64, with β_t clipped at 0.999."""
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((grid + offset) / (1 + offset) * math.pi / 2) ** 2
    alphas_cumprod = f[1:] / f[0]
    betas = (1 - alphas_cumprod / torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


def _timestep_embedding(t: Tensor, width: int) -> Tensor:
    """Sinusoidal embedding of integer timesteps (B,) → (B, width)."""
    half = width // 2
    rate = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * rate
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + embedding bias, GroupNorm → SiLU → conv, + skip: (B, C_in, T) → (B, C_out, T)."""

    def __init__(self, channels_in: int, channels_out: int, embedding: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels_in)
        self.conv1 = nn.Conv1d(channels_in, channels_out, 3, padding=1)
        self.bias = nn.Linear(embedding, channels_out)
        self.norm2 = nn.GroupNorm(groups, channels_out)
        self.conv2 = nn.Conv1d(channels_out, channels_out, 3, padding=1)
        self.skip = nn.Conv1d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.bias(embedding)[:, :, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet1d(nn.Module):
    """Noisy frames (B, F, T), timestep (B,), condition (B, E) → predicted noise (B, F, T); T divisible by 2^(levels−1)."""

    def __init__(self, bands: int, condition_dim: int, channels: tuple[int, ...], groups: int) -> None:
        super().__init__()
        width = channels[0]
        self.embedding_width = width
        self.time = nn.Sequential(nn.Linear(width, 4 * width), nn.SiLU(), nn.Linear(4 * width, 4 * width))
        self.condition = nn.Linear(condition_dim, 4 * width)
        self.input = nn.Conv1d(bands, width, 3, padding=1)
        self.down_blocks = nn.ModuleList(_ResBlock(a, a, 4 * width, groups) for a in channels[:-1])
        self.downsample = nn.ModuleList(nn.Conv1d(a, b, 4, stride=2, padding=1) for a, b in zip(channels, channels[1:]))
        self.middle = nn.ModuleList(_ResBlock(channels[-1], channels[-1], 4 * width, groups) for _ in range(2))
        self.upsample = nn.ModuleList(nn.Conv1d(b, a, 3, padding=1) for a, b in zip(channels, channels[1:]))
        self.up_blocks = nn.ModuleList(_ResBlock(2 * a, a, 4 * width, groups) for a in channels[:-1])
        self.output = nn.Sequential(nn.GroupNorm(groups, width), nn.SiLU(), nn.Conv1d(width, bands, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        embedding = self.time(_timestep_embedding(t, self.embedding_width)) + self.condition(condition)
        h, skips = self.input(x), []
        for block, down in zip(self.down_blocks, self.downsample):
            h = block(h, embedding)
            skips.append(h)
            h = down(h)
        for block in self.middle:
            h = block(h, embedding)
        for block, up in zip(reversed(self.up_blocks), reversed(self.upsample)):
            h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([h, skips.pop()], dim=1), embedding)
        return self.output(h)


class MelDiffusionModel(AudioModelIdentity, FrozenPretrainedPart, GenerativeTraining, nn.Module):
    """Conditional DDPM over log-mel frames; see the module docstring."""

    FROZEN_PART = "conditioner"
    PART_DESCRIPTION = "an encoder"

    LOSS_DESCRIPTION = "diffusion v-prediction MSE at fixed (t, noise) draws, per example"

    def __init__(self, config: MelDiffusionConfig) -> None:
        super().__init__()
        if not 0.0 <= config.evaluation_timestep_from < 1.0:
            raise SettingsError("a diffusion model's losses are measured from a share of its schedule in [0, 1), "
                                f"not {config.evaluation_timestep_from:g}")
        self.config = config
        self.conditioner = self.frozen(ContrastiveEncoder(config.conditioner))
        # its own front end only at its own floor: otherwise it reads the conditioner's, whichever is attached
        self.own_frontend = LogMelFrontend(self.frames_config) if config.log_floor is not None else None
        self.denoiser = UNet1d(config.conditioner.frontend.n_mels, config.conditioner.embedding_dim, config.channels,
                               config.groups)
        self.register_buffer("alphas_cumprod",
                             cosine_alphas_cumprod(config.diffusion_steps, config.cosine_offset).float(), persistent=False)
        self.stream_seed = int(torch.randint(0, 2**62, ()).item())
        self._stream: torch.Generator | None = None

    @property
    def multiple(self) -> int:
        """The U-Net reads a whole number of this many frames."""
        return 2 ** (len(self.config.channels) - 1)

    @property
    def sample_rate_hz(self) -> int:
        return self.config.conditioner.frontend.sample_rate_hz

    @property
    def frames_config(self) -> FrontendConfig:
        """The front end of the frames the denoiser learns: the conditioner's, at the model's own floor if it has one."""
        frontend = self.config.conditioner.frontend
        return frontend if self.config.log_floor is None else replace(frontend, log_floor=self.config.log_floor)

    @property
    def feature_key(self) -> object:
        return self.frames_config

    def features(self, waveform: Tensor) -> Tensor:
        """Waveform (B, N) → log-mel frames (B, T, F) the denoiser learns (the conditioner's front end unless
        the model has its own floor)."""
        if self.own_frontend is None:
            return self.conditioner.features(waveform)
        return self.own_frontend(waveform)

    def condition_of(self, frames: Tensor) -> Tensor:
        """The conditioner's embedding (B, E) of the audio under `features`' frames (B, T, F), read at its floor."""
        if self.own_frontend is not None:
            frames = refloor(frames, self.frames_config, self.config.conditioner.frontend)
        return self.conditioner.embed_frames(frames)

    def normalise(self, frames: Tensor) -> Tensor:
        """Log-mel frames (B, T, F) → x_0 (B, F, T'), T' the frames cut to a multiple of `multiple`."""
        frames = frames[:, : frames.shape[1] - frames.shape[1] % self.multiple]
        if frames.shape[1] == 0:
            raise SettingsError(f"the diffusion model needs at least {self.multiple} frames")
        return ((frames - self.config.mel_mean) / self.config.mel_std).transpose(1, 2)

    def diffuse(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """A draw of q(x_t | x_0): √ᾱ_t x_0 + √(1 − ᾱ_t) ε, for x_0 and ε (B, ...), t (B,)."""
        alpha = self.alphas_cumprod[t].view(-1, *([1] * (x0.ndim - 1)))
        return alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise

    def velocities(self, x0: Tensor, condition: Tensor, t: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """(v_θ(x_t, t, c), the target v), both (B, F, T'), for x_0 and ε (B, F, T'), t (B,)."""
        return self.denoiser(self.diffuse(x0, t, noise), t, condition), self.velocity(x0, t, noise)

    def _noise_loss(self, x0: Tensor, condition: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """‖v − v_θ(x_t, t, c)‖² averaged over bands and frames: (B,)."""
        predicted, target = self.velocities(x0, condition, t, noise)
        return (predicted - target).square().mean(dim=(1, 2))

    def velocity(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """The target v = √ᾱ_t ε − √(1 − ᾱ_t) x_0, for x_0 and ε (B, ...), t (B,)."""
        alpha = self.alphas_cumprod[t].view(-1, *([1] * (x0.ndim - 1)))
        return alpha.sqrt() * noise - (1 - alpha).sqrt() * x0

    def _draws(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """(timesteps (J, B), noise (J, B, F, T')) for `generative_loss` (module docstring)."""
        draws, steps = self.config.evaluation_draws, self.config.diffusion_steps
        first = round(self.config.evaluation_timestep_from * steps)
        if self.training:
            if self._stream is None:
                self._stream = torch.Generator().manual_seed(self.stream_seed)
            generator = self._stream
        else:
            generator = torch.Generator().manual_seed(self.config.evaluation_seed)
        batch = x0.shape[0]
        offsets = torch.rand(draws, batch, generator=generator)
        t = (first + (torch.arange(draws)[:, None] + offsets) * (steps - first) / draws).long().clamp(max=steps - 1)
        noise = torch.randn((draws, *x0.shape), generator=generator)
        return t.to(x0.device), noise.to(x0.device, x0.dtype)

    def loss_from_features(self, frames: Tensor) -> Tensor:
        """Per-example loss (B,): mean over J draws of the v-prediction error, conditioned on the embedding."""
        condition = self.condition_of(frames)
        x0 = self.normalise(frames)
        t, noise = self._draws(x0)
        return torch.stack([self._noise_loss(x0, condition, t[j], noise[j]) for j in range(t.shape[0])]).mean(0)

    def generative_loss(self, waveform: Tensor) -> Tensor:
        """Per-example generative loss (B,) of a waveform batch (B, N); differentiable in the waveform."""
        return self.loss_from_features(self.features(waveform))

    def predict(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """(predicted velocity, true velocity) of the first draw, both (B, T', F)."""
        condition = self.condition_of(frames)
        x0 = self.normalise(frames)
        t, noise = self._draws(x0)
        predicted, target = self.velocities(x0, condition, t[0], noise[0])
        return predicted.transpose(1, 2), target.transpose(1, 2)

    def training_loss(self, waveform: Tensor, generator: torch.Generator) -> Tensor:
        """The v-prediction loss at one random (t, ε) per example, condition dropped for `condition_dropout` of them."""
        frames = self.features(waveform)
        with torch.no_grad():
            condition = self.condition_of(frames)
        keep = (torch.rand(frames.shape[0], 1, generator=generator) >= self.config.condition_dropout)
        x0 = self.normalise(frames)
        t, noise = self.training_draws(x0, generator)
        return self._noise_loss(x0, condition * keep.to(frames.device, frames.dtype), t, noise).mean()

    def training_draws(self, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One (t (B,), ε like x0) per example of x0 (B, F, T'), as training draws them: from a CPU
        `generator`, then moved to x0's device, so that every device draws the same."""
        t = torch.randint(self.config.diffusion_steps, (x0.shape[0],), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        return t.to(x0.device), noise.to(x0.device, x0.dtype)

    @torch.no_grad()
    def sample(self, condition: Tensor, num_frames: int, generator: torch.Generator, steps: int = 50,
               guidance: float = 2.0) -> Tensor:
        """DDIM (η = 0) from noise to log-mel frames (B, T, F), guided towards `condition` (B, E).

        Args:
            num_frames: T, rounded down to a multiple of `multiple`.
            generator: draws the starting noise; equal states give equal frames.
            steps: denoising steps, evenly spaced over the schedule.
            guidance: classifier-free guidance weight w: ε = ε(∅) + w (ε(c) − ε(∅)); 1 is plain conditioning.
        """
        num_frames -= num_frames % self.multiple
        if num_frames <= 0 or steps < 1:
            raise SettingsError("sample at least one U-Net block of frames, with at least one step")
        was_training = self.training
        self.eval()
        bands = self.config.conditioner.frontend.n_mels
        x = torch.randn((condition.shape[0], bands, num_frames), generator=generator).to(condition.device)
        times = torch.linspace(self.config.diffusion_steps - 1, 0, steps).round().long().tolist()
        low, high = ((bound - self.config.mel_mean) / self.config.mel_std for bound in (-1.0, 1.0))
        try:
            for index, t in enumerate(times):
                t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                conditional = self.denoiser(x, t_batch, condition)
                unconditional = self.denoiser(x, t_batch, torch.zeros_like(condition))
                velocity = unconditional + guidance * (conditional - unconditional)
                alpha = self.alphas_cumprod[t]
                # x̂_0 from the velocity, clipped to the front end's range [−1, 1] (normalised); ε̂ consistent with it.
                x0 = (alpha.sqrt() * x - (1 - alpha).sqrt() * velocity).clamp(low, high)
                noise = (x - alpha.sqrt() * x0) / (1 - alpha).sqrt()
                alpha_next = self.alphas_cumprod[times[index + 1]] if index + 1 < len(times) else torch.tensor(1.0)
                x = alpha_next.sqrt() * x0 + (1 - alpha_next).sqrt() * noise
        finally:
            self.train(was_training)
        return (x * self.config.mel_std + self.config.mel_mean).transpose(1, 2).clamp_min(-1.0)

    @torch.no_grad()
    def generate(self, reference_waveform: Tensor, num_frames: int, generator: torch.Generator, steps: int = 50,
                 guidance: float = 2.0) -> Tensor:
        """New music like the references (B, N): their embeddings → `sample` → waveform (B, (T − 1) · hop) at 16 kHz."""
        from harmonycloak.models.audio_generation import mel_to_waveform

        condition = self.conditioner.embed(reference_waveform)
        frames = self.sample(condition, num_frames, generator, steps, guidance)
        return mel_to_waveform(frames, self.frames_config, generator)
