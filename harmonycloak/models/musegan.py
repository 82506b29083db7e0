"""MuseGAN-style multi-track GAN over piano-roll phrases (Dong et al. 2018, "hybrid" model).

The paper's first MIDI target (Table 2: a GAN of about 720k parameters). A phrase is
`bars` bars of one multi-track piano roll; the generator writes it bar by bar:

* **latents of the hybrid model**: four parts of `latent_dim` each. An *inter-track* part
  shared by all tracks and an *intra-track* part private to each track, each either fixed
  over the phrase or made to change from bar to bar by a *temporal generator* (one shared,
  one private per track) that turns one vector into one vector per bar.
* **bar generator**: a *shared* trunk turns the four parts for (bar, track) into a coarse
  time × octave map; a *private* head per track refines time and lays out the 12 pitch
  classes of each octave. Outputs are velocities in [0, 1] (a sigmoid).
* **discriminator**: a *private* stem per track reads pitch classes within each octave,
  then a *shared* trunk reads all tracks together, halving time at each layer, and folds
  the octaves away: a feature sequence (B, T', D) over the phrase, read by a linear head
  to one realness logit. MuseGAN's chroma and onset streams are left out (they add
  parameters, not a different kind of model).

Loss: the classic GAN log-loss of paper Eq. 4 (MuseGAN itself used WGAN-GP). The
discriminator minimises −log D(x) − log(1 − D(G(z))); the generator minimises the
non-saturating −log D(G(z)) rather than Eq. 4's log(1 − D(G(z))), as GANs are trained in
practice (Goodfellow et al. 2014, §3).

**The generative loss the noise minimises** (Eq. 4 is printed garbled; docs/paper-reading.md
reads it as "the noise making the discriminator's job trivial"): δ minimises the
discriminator's loss on the protected real data, L_gen(x + δ) = −log D(x + δ). The
protected music then looks real beyond doubt; the discriminator separates it from the
generator's output without effort, its loss nears zero, and the generator's gradient
through a saturated discriminator vanishes: it learns nothing from the protected data.

**What `predict` returns** (for the black-box meta-test divergence,
`objectives.output_divergence`): the only part of a GAN whose output depends on the data
is the discriminator, so "the model's output" is its feature sequence over the phrase,
(B, T', D), the representation its realness head reads. Prediction and target are the
same features of the same input: the divergence compares the unseen discriminator's view
of the protected music with its view of the clean music. Minimising it keeps the noise
found on the meta-train models from moving what an unseen discriminator sees of the
music, a transfer regulariser rather than a push towards unlearnability (a GAN has no
"prediction of the clean music" that the noise could make perfect).

Inputs are batches of phrases, (B, tracks, bars × steps_per_bar, 128) velocities in
[0, 1]; the model keeps the `12 × octaves` pitches from `lowest_pitch` up (MuseGAN: 84,
C1 to B7) and ignores the rest.

Shapes: B batch, M tracks, N bars, S steps per bar, P kept pitches, O octaves (P = 12 O),
L latent size, T' discriminator time steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.models.interface import PhraseLayout

MIDI_PITCHES = 128
PITCH_CLASSES = 12
MUSEGAN_LEARNING_RATE = 1e-4  # Adam, paper §5.1
MUSEGAN_ADAM_BETAS = (0.5, 0.9)  # MuseGAN's Adam betas (Dong et al. 2018)


@dataclass(frozen=True)
class PhraseFormat:
    """How a phrase is laid out; every model that reads it must agree on this."""

    tracks: int = 4  # M: instruments (4 for Bach chorales: soprano, alto, tenor, bass)
    bars: int = 4  # N: bars per phrase (MuseGAN generates 4-bar phrases)
    steps_per_bar: int = 48  # S: time steps per bar (MuseGAN: 48, i.e. 12 per beat in 4/4)
    lowest_pitch: int = 24  # MIDI pitch of the lowest kept row (C1, as MuseGAN)
    octaves: int = 7  # O: kept pitches are 12 × octaves from lowest_pitch (MuseGAN: 84)

    @property
    def steps(self) -> int:
        return self.bars * self.steps_per_bar

    @property
    def pitches(self) -> int:
        return PITCH_CLASSES * self.octaves


@dataclass(frozen=True)
class MuseGanConfig:
    phrase: PhraseFormat = field(default_factory=PhraseFormat)
    latent_dim: int = 32  # L: size of each of the four latent parts of the hybrid model
    temporal_width: int = 64  # hidden units of each temporal generator
    generator_width: int = 104  # channels of the shared bar generator
    private_width: int = 32  # channels of each track's private bar generator
    generator_layers: int = 0  # extra (non-upsampling) convolutions in the shared bar generator
    discriminator_width: int = 128  # channels of the shared discriminator
    private_discriminator_width: int = 16  # channels of each track's private discriminator stem
    discriminator_layers: int = 3  # time-halving convolutions in the shared discriminator
    kernel_steps: int = 3  # time extent of every convolution kernel (odd)
    # The share of cells the untrained generator sounds: its output bias starts at the logit of
    # this (None: the layer's own initial bias, every cell near 0.5). Piano rolls are sparse (the
    # zoo's corpus sounds 0.3 % of its cells); a generator that starts with half of them on
    # hands its discriminator a density it separates at once, and the game saturates there.
    initial_note_density: float | None = None

    def with_tracks(self, tracks: int) -> "MuseGanConfig":
        """The same model reading `tracks` tracks."""
        return replace(self, phrase=replace(self.phrase, tracks=tracks))


@dataclass(frozen=True)
class AdversarialLosses:
    """Losses of one adversarial step, in nats (means over the batch)."""

    discriminator: float  # −log D(x) − log(1 − D(G(z)))  (log 4 ≈ 1.386 when D guesses)
    generator: float  # −log D(G(z))


def _factors_of_two(number: int) -> int:
    """How many times `number` can be halved exactly (12 → 2, 48 → 4, 7 → 0)."""
    count = 0
    while number > 0 and number % 2 == 0:
        number //= 2
        count += 1
    return count


def _time_doublings(steps_per_bar: int) -> int:
    """How many times the generator doubles time: the factors of 2 in S, at most 4."""
    return min(_factors_of_two(steps_per_bar), 4)


def _check_config(config: MuseGanConfig) -> None:
    phrase = config.phrase
    if min(phrase.tracks, phrase.bars, phrase.steps_per_bar, phrase.octaves) < 1:
        raise SettingsError("a MuseGAN phrase needs at least one track, bar, step and octave")
    if not 0 <= phrase.lowest_pitch <= MIDI_PITCHES - phrase.pitches:
        raise SettingsError(f"{phrase.octaves} octaves from MIDI pitch {phrase.lowest_pitch} leave the range 0–127")
    if config.kernel_steps < 1 or config.kernel_steps % 2 == 0:
        raise SettingsError(f"the MuseGAN kernel size must be odd, not {config.kernel_steps}")
    if config.initial_note_density is not None and not 0 < config.initial_note_density < 1:
        raise SettingsError(f"the MuseGAN's initial note density is a share in (0, 1), not {config.initial_note_density}")
    steps_left = phrase.steps // 2 ** (config.discriminator_layers + 1)
    if config.discriminator_layers < 0 or steps_left < 1 or phrase.steps % 2 ** (config.discriminator_layers + 1):
        raise SettingsError(
            f"a phrase of {phrase.steps} steps cannot be halved {config.discriminator_layers + 1} times "
            "by the MuseGAN discriminator"
        )


class _TimeConv(nn.Sequential):
    """Convolution along time only, 'same' padding: (B, C_in, T, O) → (B, C_out, T, O)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_steps: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(channels_in, channels_out, (kernel_steps, 1), stride=(stride, 1), padding=(kernel_steps // 2, 0))
        )


class _UpBlock(nn.Sequential):
    """Double time (nearest), convolve, normalise, ReLU: (B, C_in, T, O) → (B, C_out, 2T, O)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_steps: int, upsample: bool = True) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=(2, 1), mode="nearest")] if upsample else []
        layers += [_TimeConv(channels_in, channels_out, kernel_steps), nn.BatchNorm2d(channels_out), nn.ReLU()]
        super().__init__(*layers)


class _TemporalGenerator(nn.Sequential):
    """One latent vector → one vector per bar: (B, L) → (B, N·L)."""

    def __init__(self, config: MuseGanConfig) -> None:
        width, latent, bars = config.temporal_width, config.latent_dim, config.phrase.bars
        super().__init__(nn.Linear(latent, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, bars * latent))


class MuseGanGenerator(nn.Module):
    """Latents (B, 2 + 2M, L) → phrases (B, M, N, S, P) of velocities in [0, 1].

    Latent rows: 0 inter-track fixed, 1 seed of the shared temporal generator,
    2 .. 2+M intra-track fixed (one per track), 2+M .. 2+2M seeds of the private temporal
    generators.
    """

    def __init__(self, config: MuseGanConfig) -> None:
        super().__init__()
        phrase = config.phrase
        self.config = config
        doublings = _time_doublings(phrase.steps_per_bar)
        self.coarse_steps = phrase.steps_per_bar // 2**doublings
        shared_doublings = max(doublings - 1, 0)
        width, private = config.generator_width, config.private_width
        self.shared_temporal = _TemporalGenerator(config)
        self.private_temporal = nn.ModuleList(_TemporalGenerator(config) for _ in range(phrase.tracks))
        self.project = nn.Sequential(
            nn.Linear(4 * config.latent_dim, width * self.coarse_steps * phrase.octaves),
            nn.BatchNorm1d(width * self.coarse_steps * phrase.octaves),
            nn.ReLU(),
        )
        self.shared = nn.Sequential(
            *(_UpBlock(width, width, config.kernel_steps) for _ in range(shared_doublings)),
            *(_UpBlock(width, width, config.kernel_steps, upsample=False) for _ in range(config.generator_layers)),
        )
        # Each track's head: the last time doubling (if any), then 12 pitch classes per octave.
        self.private = nn.ModuleList(
            nn.Sequential(
                _UpBlock(width, private, config.kernel_steps, upsample=doublings > 0),
                nn.ConvTranspose2d(private, 1, (1, PITCH_CLASSES), stride=(1, PITCH_CLASSES)),
            )
            for _ in range(phrase.tracks)
        )
        if config.initial_note_density is not None:
            density = config.initial_note_density
            with torch.no_grad():
                for head in self.private:
                    head[-1].bias.fill_(math.log(density / (1 - density)))

    def forward(self, latents: Tensor) -> Tensor:
        phrase, latent = self.config.phrase, self.config.latent_dim
        batch, tracks, bars = latents.shape[0], phrase.tracks, phrase.bars
        inter = latents[:, 0]  # (B, L)
        inter_temporal = self.shared_temporal(latents[:, 1]).view(batch, bars, latent)  # (B, N, L)
        intra = latents[:, 2 : 2 + tracks]  # (B, M, L)
        intra_temporal = torch.stack(
            [g(latents[:, 2 + tracks + m]).view(batch, bars, latent) for m, g in enumerate(self.private_temporal)], 1
        )  # (B, M, N, L)
        per_bar = torch.cat(
            [
                inter[:, None, None].expand(batch, tracks, bars, latent),
                inter_temporal[:, None].expand(batch, tracks, bars, latent),
                intra[:, :, None].expand(batch, tracks, bars, latent),
                intra_temporal,
            ],
            dim=-1,
        )  # (B, M, N, 4L)
        hidden = self.project(per_bar.reshape(batch * tracks * bars, 4 * latent))
        hidden = self.shared(hidden.view(-1, self.config.generator_width, self.coarse_steps, phrase.octaves))
        hidden = hidden.view(batch, tracks, bars, *hidden.shape[1:])  # (B, M, N, W, S', O)
        bars_out = [
            head(hidden[:, m].flatten(0, 1)).view(batch, bars, phrase.steps_per_bar, phrase.pitches)
            for m, head in enumerate(self.private)
        ]
        return torch.sigmoid(torch.stack(bars_out, dim=1))  # (B, M, N, S, P)


class MuseGanDiscriminator(nn.Module):
    """Phrases (B, M, N, S, P) → (feature sequence (B, T', D), realness logit (B,))."""

    def __init__(self, config: MuseGanConfig) -> None:
        super().__init__()
        phrase = config.phrase
        self.config = config
        private, width, k = config.private_discriminator_width, config.discriminator_width, config.kernel_steps
        # Private stem per track: pitch classes within each octave, then halve time.
        self.private = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(1, private, (1, PITCH_CLASSES), stride=(1, PITCH_CLASSES)),
                nn.LeakyReLU(0.2),
                _TimeConv(private, private, k, stride=2),
                nn.LeakyReLU(0.2),
            )
            for _ in range(phrase.tracks)
        )
        shared: list[nn.Module] = []
        channels = private * phrase.tracks
        for _ in range(config.discriminator_layers):
            shared += [_TimeConv(channels, width, k, stride=2), nn.LeakyReLU(0.2)]
            channels = width
        self.shared = nn.Sequential(*shared)
        self.fold_octaves = nn.Sequential(nn.Conv2d(channels, width, (1, phrase.octaves)), nn.LeakyReLU(0.2))
        self.time_steps = phrase.steps // 2 ** (config.discriminator_layers + 1)
        self.head = nn.Linear(self.time_steps * width, 1)

    def feature_sequence(self, phrases: Tensor) -> Tensor:
        """(B, M, N, S, P) → (B, T', D): what the realness head reads, over the phrase's time."""
        batch = phrases.shape[0]
        tracks = phrases.flatten(2, 3)  # (B, M, N·S, P)
        stems = torch.cat([stem(tracks[:, m : m + 1]) for m, stem in enumerate(self.private)], dim=1)
        hidden = self.fold_octaves(self.shared(stems))  # (B, D, T', 1)
        return hidden.view(batch, -1, self.time_steps).transpose(1, 2)

    def forward(self, phrases: Tensor) -> tuple[Tensor, Tensor]:
        features = self.feature_sequence(phrases)
        return features, self.head(features.flatten(1)).squeeze(-1)


class MuseGanModel(nn.Module):
    """A MuseGAN-style GAN exposing the protocol the min-min optimiser uses (see module doc)."""

    def __init__(self, config: MuseGanConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = config
        self.generator_network = MuseGanGenerator(config)
        self.discriminator_network = MuseGanDiscriminator(config)
        # Latents of the outer training step come from the model's own random stream, seeded
        # from the build seed, so that a run is reproducible without touching global state.
        self.latent_seed = int(torch.randint(0, 2**62, ()).item())
        self._latent_stream: torch.Generator | None = None

    family = "musegan"
    kind = "midi"

    @property
    def phrase_layout(self) -> PhraseLayout:
        return PhraseLayout(self.config.phrase.steps_per_bar, self.config.phrase.bars)

    @property
    def num_tracks(self) -> int:
        return self.config.phrase.tracks

    @property
    def feature_key(self) -> object:
        """Models reading the same phrase format compute the same features."""
        return ("musegan-phrase", self.config.phrase)

    def features(self, rolls: Tensor) -> Tensor:
        """Rolls (B, M, N·S, 128) → phrases (B, M, N, S, P): kept pitches, bars split apart."""
        phrase = self.config.phrase
        if rolls.ndim != 4 or tuple(rolls.shape[1:]) != (phrase.tracks, phrase.steps, MIDI_PITCHES):
            raise ModelError(
                f"this MuseGAN model reads phrases of {phrase.tracks} tracks × {phrase.bars} bars of "
                f"{phrase.steps_per_bar} steps × {MIDI_PITCHES} pitches, "
                f"not a piano roll of shape {tuple(rolls.shape)}"
            )
        kept = rolls[..., phrase.lowest_pitch : phrase.lowest_pitch + phrase.pitches]
        return kept.reshape(rolls.shape[0], phrase.tracks, phrase.bars, phrase.steps_per_bar, phrase.pitches)

    def to_rolls(self, phrases: Tensor) -> Tensor:
        """Inverse of `features`: phrases (B, M, N, S, P) → rolls (B, M, N·S, 128), other pitches 0."""
        phrase = self.config.phrase
        rolls = phrases.flatten(2, 3)
        below, above = phrase.lowest_pitch, MIDI_PITCHES - phrase.lowest_pitch - phrase.pitches
        return F.pad(rolls, (below, above))

    def discriminator_logits(self, phrases: Tensor) -> Tensor:
        """Realness logits (B,) of phrases (B, M, N, S, P); D(x) = sigmoid(logit)."""
        return self.discriminator_network(phrases)[1]

    def loss_from_features(self, phrases: Tensor) -> Tensor:
        """L_gen per phrase (B,): the discriminator's loss on them as real data, −log D(x)."""
        return F.softplus(-self.discriminator_logits(phrases))

    def generative_loss(self, rolls: Tensor) -> Tensor:
        """Per-phrase generative loss L_gen (paper Eq. 4, read as in the module doc), shape (B,)."""
        return self.loss_from_features(self.features(rolls))

    def training_loss(self, rolls: Tensor, generator: torch.Generator) -> Tensor:
        """What a training step on real rolls (B, M, N·S, 128) lowers: the discriminator's loss
        −log D(x) − log(1 − D(G(z))), its mean over the batch, with as many fakes from latents drawn
        from `generator`. Only the discriminator reads real music; the generator learns it through
        the discriminator alone, so the fakes carry no gradient (a gradient of this loss moves the
        discriminator only), as in `adversarial_step`'s first half."""
        return self._discriminator_loss(self.features(rolls), generator)

    def discriminator_losses(self, real: Tensor, fake: Tensor) -> Tensor:
        """The discriminator's loss −log D(x) − log(1 − D(G(z))) of real phrases (B, M, N, S, P)
        beside generated ones (B or 1 or, for one real phrase, any number), shape (max(B, fakes),)."""
        return self.loss_from_features(real) + F.softplus(self.discriminator_logits(fake))

    def _discriminator_loss(self, real: Tensor, generator: torch.Generator) -> Tensor:
        """`discriminator_losses` of real phrases (B, M, N, S, P), the mean over the batch, against
        max(B, 2) fakes from latents drawn from `generator` (batch norm needs two in training mode: a
        one-phrase song), generated without gradients."""
        with torch.no_grad():
            fake = self.generator_network(self.sample_latents(max(real.shape[0], 2), generator))
        return self.discriminator_losses(real, fake).mean()

    def predict(self, phrases: Tensor) -> tuple[Tensor, Tensor]:
        """The discriminator's feature sequence (B, T', D), as both prediction and target (module doc)."""
        features = self.discriminator_network.feature_sequence(phrases)
        return features, features

    def sample_latents(self, batch: int, generator: torch.Generator) -> Tensor:
        """Standard normal latents (B, 2 + 2M, L) for the generator network."""
        rows = 2 + 2 * self.config.phrase.tracks
        device = next(self.parameters()).device
        return torch.randn(batch, rows, self.config.latent_dim, generator=generator).to(device)

    def generate(self, num_phrases: int, generator: torch.Generator) -> Tensor:
        """New phrases as rolls (B, M, N·S, 128) of velocities in [0, 1], without gradients.

        The caller sets train/eval mode (batch-norm statistics); `eval()` after training.
        """
        with torch.no_grad():
            return self.to_rolls(self.generator_network(self.sample_latents(num_phrases, generator)))

    def adversarial_step(
        self,
        real: Tensor,
        discriminator_optimiser: torch.optim.Optimizer,
        generator_optimiser: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> AdversarialLosses:
        """One discriminator step, then one generator step, on real phrases (B, M, N, S, P).

        The two optimisers may be one and the same (the min-min loop's SGD over all
        parameters): gradients are cleared to None before each step and the other network
        is frozen, so each step moves only its own network.
        """
        real = real.detach()
        batch = max(real.shape[0], 2)  # as many fakes as `_discriminator_loss` draws
        flags = [parameter.requires_grad for parameter in self.parameters()]
        try:
            # Discriminator: minimise −log D(x) − log(1 − D(G(z))).
            self.generator_network.requires_grad_(False)
            self.discriminator_network.requires_grad_(True)
            discriminator_optimiser.zero_grad(set_to_none=True)
            discriminator_loss = self._discriminator_loss(real, generator)
            discriminator_loss.backward()
            discriminator_optimiser.step()
            # Generator: minimise the non-saturating −log D(G(z)).
            self.discriminator_network.requires_grad_(False)
            self.generator_network.requires_grad_(True)
            generator_optimiser.zero_grad(set_to_none=True)
            fake = self.generator_network(self.sample_latents(batch, generator))
            generator_loss = F.softplus(-self.discriminator_logits(fake)).mean()
            generator_loss.backward()
            generator_optimiser.step()
            generator_optimiser.zero_grad(set_to_none=True)
        finally:
            for parameter, flag in zip(self.parameters(), flags):
                parameter.requires_grad_(flag)
        return AdversarialLosses(discriminator_loss.item(), generator_loss.item())

    def training_step(self, rolls: Tensor, optimiser: torch.optim.Optimizer,
                      generator: torch.Generator | None = None) -> AdversarialLosses:
        """The min-min loop's outer step over θ: one adversarial step with its one optimiser."""
        if generator is None:
            if self._latent_stream is None:
                self._latent_stream = torch.Generator().manual_seed(self.latent_seed)
            generator = self._latent_stream
        return self.adversarial_step(self.features(rolls), optimiser, optimiser, generator)


def train_musegan(
    model: MuseGanModel,
    batches: Callable[[Tensor], Tensor],
    num_segments: int,
    steps: int,
    generator: torch.Generator,
    batch_segments: int = 8,
    learning_rate: float = MUSEGAN_LEARNING_RATE,
) -> list[AdversarialLosses]:
    """Train a MuseGAN as an attacker would: Adam for each network (paper §5.1: lr 1e-4).

    Mirrors `optim.training.train_generative_model`, which cannot train a GAN (it has one
    loss and one optimiser). Returns both losses of every step.

    Args:
        batches: segment ids (B,) → rolls (B, M, N·S, 128).
    """
    discriminator_optimiser = torch.optim.Adam(model.discriminator_network.parameters(), lr=learning_rate,
                                               betas=MUSEGAN_ADAM_BETAS)
    generator_optimiser = torch.optim.Adam(model.generator_network.parameters(), lr=learning_rate,
                                           betas=MUSEGAN_ADAM_BETAS)
    curve = []
    for _ in range(steps):
        segment_ids = torch.randint(num_segments, (min(batch_segments, num_segments),), generator=generator)
        real = model.features(batches(segment_ids))
        curve.append(model.adversarial_step(real, discriminator_optimiser, generator_optimiser, generator))
    return curve


# The phrase of the tiny preset and the tiny black-box bag (tests).
TINY_PHRASE = PhraseFormat(tracks=2, bars=2, steps_per_bar=8, lowest_pitch=48, octaves=2)


def max_discriminator_layers(phrase: PhraseFormat) -> int:
    """The most time-halving discriminator convolutions a phrase allows (its steps halve layers + 1 times)."""
    return _factors_of_two(phrase.steps) - 1
