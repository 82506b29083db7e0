"""A third audio cloak: small, smooth time–frequency gains on the music itself instead of added noise.

The other cloaks add a signal the masking model must hide. This one changes the level of what
is already there: each lane's short-time spectrum is multiplied by a real gain
G = 10^(g / 20) with |g| ≤ `max_gain_db` (by strength, `settings.max_gain_db`), and δ is what that
changes, y − x. Nothing new sounds, so the masking model has nothing to judge; what a
listener could notice is the level moving, which ViSQOL and loudness measure, and codecs keep
a level change where they drop sub-threshold noise.

    r[l, j, k]  = max_gain_db · Σ_b tanh(p[l, j, b]) · W[b, k]          W: triangles on the mel scale
    c[l, j, k]  = r − Σ_k |X|² r / Σ_k |X|²                               (level-neutral: each frame's
    g[l, j, k]  = c · min(1, max_gain_db / max_k |c|)                     power-weighted mean gain is 0)
    y           = Σ_j w · irfft( G[l, j, k] · rfft(w · x_j) )             w: √Hann, hop = n_fft / 2
    δ           = y − x

Level-neutral gains (the default) move no frame's level to first order, only its balance
across bands: an optimiser left free turns the whole song down by its bound (a model reading
log levels sees a quieter song), which changes loudness by most of a dB and which an
attacker's loudness normalisation undoes. The scale that follows the centring keeps every
gain within the bound and leaves the mean at 0.

The gain is stated per frame and per band (`bands` triangles spaced evenly in mel, which sum
to one at every bin), so it is smooth across frequency, and the √Hann windows of hop n/2
(whose squares sum to one) make it smooth in time and make y = x exactly when g = 0.

Shapes: L lanes, J frames, K bins, C bands, B segments, S samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.cloak.problem import render_whole_noise
from harmonycloak.errors import SettingsError

ANALYSIS_FRAMES = 4096  # frames read at once when the whole song is (`GainModulationCloak.active_share`)


@dataclass(frozen=True)
class GainModulationSettings:
    max_gain_db: float = 1.0  # |g| ≤ this at every frame and bin (strength)
    frame_ms: float = 32.0  # STFT length (512 samples at 16 kHz); the gain moves once per hop (frame_ms / 2)
    bands: int = 16  # mel-spaced bands the gain is stated in (smooth across frequency)
    initial_scale: float = 0.1  # std of the initial unconstrained parameters
    level_neutral: bool = True  # each frame's power-weighted mean gain is held at 0 dB

    def __post_init__(self) -> None:
        if not 0 < self.max_gain_db <= 6:
            raise SettingsError(f"the gain must stay within 0–6 dB, not {self.max_gain_db} dB")
        if self.bands < 1:
            raise SettingsError("the gain needs at least one band")


def mel_triangles(num_bins: int, sample_rate_hz: int, bands: int) -> Tensor:
    """(bands, num_bins) weights of `bands` triangles evenly spaced in mel over 0 … Nyquist.

    Each bin's weights sum to one (linear interpolation between the two nearest band
    centres; flat below the first centre and above the last), so a gain of g in every band
    is g at every bin and |Σ_b g_b W[b, k]| ≤ max_b |g_b|."""
    bin_mel = 2595.0 * np.log10(1.0 + np.linspace(0.0, sample_rate_hz / 2, num_bins) / 700.0)
    centres = np.linspace(bin_mel[0], bin_mel[-1], bands + 2)[1:-1] if bands > 1 else np.array([bin_mel[-1] / 2])
    weights = np.zeros((bands, num_bins))
    position = np.interp(bin_mel, centres, np.arange(bands))  # fractional band index of each bin, clamped
    lower = np.floor(position).astype(int)
    upper = np.minimum(lower + 1, bands - 1)
    fraction = position - lower
    weights[lower, np.arange(num_bins)] += 1.0 - fraction
    weights[upper, np.arange(num_bins)] += fraction
    return torch.from_numpy(weights).float()


class GainModulationCloak(nn.Module):
    """Gains of at most ±max_gain_db, one per lane, frame and band.

    Args:
        lanes: clean music, (L, N) at `sample_rate_hz`.
        sample_rate_hz: rate of `lanes` (the working rate of the optimisation).
        settings: see `GainModulationSettings`.
        generator: seeds the initial parameters.
    """

    keeps_loudness = False  # its change of level is the cloak itself (`cloak.loudness` is the masked cloak's)

    def __init__(self, lanes: Tensor, sample_rate_hz: int,
                 settings: GainModulationSettings = GainModulationSettings(),
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.sample_rate_hz = sample_rate_hz
        self.n_fft = 1 << int(round(math.log2(settings.frame_ms * sample_rate_hz / 1000)))
        self.hop_length = self.n_fft // 2
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True, dtype=lanes.dtype).sqrt())
        # the music itself, not its spectrum: a frame's spectrum is taken when a step reads it (`spectrum`),
        # which keeps a long song's memory to its samples (the whole spectrum is twice their size)
        self.register_buffer("lanes", lanes)
        self.register_buffer("band_weights", mel_triangles(self.n_fft // 2 + 1, sample_rate_hz, settings.bands))
        self.num_frames = -(-lanes.shape[-1] // self.hop_length) + 1
        self.gains = nn.Parameter(settings.initial_scale * torch.randn(lanes.shape[0], self.num_frames, settings.bands,
                                                                       generator=generator, dtype=lanes.dtype))

    def spectrum(self, frame_index: Tensor | slice = slice(None)) -> Tensor:
        """rfft of the √Hann-windowed frames `frame_index` of every lane, (L, ..., K) complex.

        Frame j spans [(j − 1)·hop, (j + 1)·hop); samples outside the song are 0."""
        if isinstance(frame_index, slice):
            frame_index = torch.arange(self.num_frames, device=self.lanes.device)[frame_index]
        num_samples = self.lanes.shape[-1]
        sample_index = (frame_index[..., None] - 1) * self.hop_length + torch.arange(self.n_fft, device=frame_index.device)
        inside = (sample_index >= 0) & (sample_index < num_samples)
        windows = self.lanes[:, sample_index.clamp(0, num_samples - 1)] * inside  # (L, ..., n_fft)
        return torch.fft.rfft(windows * self.window)

    @torch.no_grad()
    def randomise(self, generator: torch.Generator) -> None:
        """Random parameters, no optimisation (the benchmark's control): N(0, 1), gains about 0.6 of the bound."""
        self.gains.copy_(torch.randn(self.gains.shape, generator=generator, dtype=self.gains.dtype))

    def active_share(self) -> float:
        """Share of (lane, frame) cells with any music to change the level of."""
        active = sum(int((self.spectrum(slice(first, first + ANALYSIS_FRAMES)).abs().amax(dim=-1) > 0).sum())
                     for first in range(0, self.num_frames, ANALYSIS_FRAMES))
        return active / (self.lanes.shape[0] * self.num_frames)

    @property
    def alignment_samples(self) -> int:
        return self.hop_length

    def gain_db(self, frame_index: Tensor | slice = slice(None), spectrum: Tensor | None = None) -> Tensor:
        """g in dB of frames `frame_index`, (L, ..., K), within ±max_gain_db; with `level_neutral`,
        each frame's mean over bins weighted by the music's power there is 0 (`spectrum`: those
        frames' spectrum when the caller has it)."""
        bound = self.settings.max_gain_db
        raw = bound * torch.tanh(self.gains[:, frame_index]) @ self.band_weights
        if not self.settings.level_neutral:
            return raw
        power = (self.spectrum(frame_index) if spectrum is None else spectrum).abs().square()
        mean = (raw * power).sum(dim=-1, keepdim=True) / power.sum(dim=-1, keepdim=True).clamp_min(1e-20)
        centred = raw - mean
        peak = centred.abs().amax(dim=-1, keepdim=True)
        return centred * (bound / peak.clamp_min(bound))

    def noise(self, starts: Tensor, num_samples: int) -> Tensor:
        """δ = y − x of the segments starting at `starts` (B,), shape (B, L, num_samples), differentiable."""
        hop, num_frames = self.hop_length, num_samples // self.hop_length + 1
        frame_index = (starts // hop).long()[:, None] + torch.arange(num_frames, device=starts.device)  # (B, F)
        valid = frame_index < self.num_frames
        frame_index = frame_index.clamp(max=self.num_frames - 1)
        spectrum = self.spectrum(frame_index)  # (L, B, F, K)
        change = torch.pow(10.0, self.gain_db(frame_index, spectrum) / 20.0) - 1.0
        change = change * valid[None, :, :, None]
        segments = torch.fft.irfft(spectrum * change, n=self.n_fft) * self.window  # (L, B, F, n)
        lanes, batch = segments.shape[:2]
        columns = segments.transpose(0, 1).reshape(batch * lanes, num_frames, self.n_fft).transpose(1, 2)
        length = (num_frames + 1) * hop
        waveform = torch.nn.functional.fold(columns, (1, length), (1, self.n_fft), stride=(1, hop))
        return waveform.reshape(batch, lanes, length)[..., hop : hop + num_samples]

    def render(self, sample_rate_hz: int, num_frames: int) -> np.ndarray:
        """The whole δ at any sample rate, (L, num_frames) float32 (band-limited resampling)."""
        return render_whole_noise(self, sample_rate_hz, num_frames)
