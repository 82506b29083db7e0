"""The paper's cloak: one tone per short window at the window's dominant frequency (§4.1, §4.3).

For every lane (a channel of a track) the music is cut into non-overlapping windows of
`window_ms` (10 ms by default). In each window:

1. the dominant frequency ν_t is the strongest STFT peak between `min_frequency_hz` and
   `max_frequency_hz`, refined by parabolic interpolation of the dB spectrum;
2. the music's level there, M_t (dB SPL, Eq. 10 read as 20 log10(p / p0) with a full-scale
   sine at 96 dB SPL; capped by what the window itself holds, see `dominant_partials`),
   and the threshold in quiet T_H(ν_t) (Eq. 2) bound the noise level:
   T_H(ν_t) ≤ level_t ≤ M_t − headroom_db (Eq. 11); the headroom is the strength setting;
3. a window whose dominant partial is quieter than `silence_threshold_db_spl`, or whose
   range is empty, gets no noise.

The noise of window t is a sine at ν_t whose level is kept inside that range by a sigmoid of
one free parameter per window. A second free parameter per window, a phase offset, sets
where the noise stands against the music's own partial at ν_t: in phase it strengthens the
partial, against it it weakens it (the paper does not say how the phase is chosen; without
this parameter the noise's effect on the music's spectrum averages out and the optimiser has
nothing to steer). Windows join without clicks: the sine's phase runs on continuously from
window to window (each window starts where the last one's sine ended), and both the
amplitude and the phase offset are interpolated linearly between window centres. Upper bounds are lowered to the smallest of
each window and its neighbours (`bounds.neighbour_minimum`) so the cross-faded amplitude never
exceeds a window's own bound and is exactly zero in silent windows.

The dominant frequency is measured on an analysis window longer than the noise window
(`analysis_ms`, 64 ms by default) centred on it: a 10 ms FFT resolves only 100 Hz, too coarse
for bass notes. The noise itself changes every `window_ms`.

Shapes: L lanes, T windows, B segments, S samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.cloak.bounds import neighbour_minimum, sigmoid_between
from harmonycloak.psycho.functional import (
    absolute_threshold_db_spl,
    amplitude_to_db_spl,
    db_spl_to_amplitude,
    spectrum_db_spl,
)
from harmonycloak.settings import DEFAULT_WINDOW_MS, FULL_SCALE_DB_SPL, check_window_ms


@dataclass(frozen=True)
class DominantToneSettings:
    window_ms: float = DEFAULT_WINDOW_MS  # noise window (paper default; 5–100 ms allowed, §5.2.5)
    analysis_ms: float = 64.0  # FFT length used to find the dominant frequency
    headroom_db: float = 14.0  # noise stays this far under the music's level at ν_t (strength)
    silence_threshold_db_spl: float = 30.0  # no dominant note when its level is below this
    min_frequency_hz: float = 50.0  # below, masking models are unreliable (docs/audibility.md)
    max_frequency_hz: float = 7_200.0  # what a 16 kHz model can hear, and under 14 kHz (docs/audibility.md)
    full_scale_db_spl: float = FULL_SCALE_DB_SPL  # calibration: a full-scale sine is 96 dB SPL
    initial_parameter: float = -2.0  # sigmoid logit at the start: 12 % of the way up the dB range
    analysis_chunk_s: float = 30.0  # the dominant partials are found this many seconds at a time (memory)

    def __post_init__(self) -> None:
        check_window_ms(self.window_ms)


class DominantToneCloak(nn.Module):
    """Noise parameterised by one level logit per window and lane.

    Args:
        lanes: clean music, (L, N) at `sample_rate_hz`.
        sample_rate_hz: rate of `lanes` (the working rate of the optimisation).
        settings: see `DominantToneSettings`.
    """

    keeps_loudness = False  # its noise is written as optimised (`cloak.loudness` is the masked cloak's)

    def __init__(self, lanes: Tensor, sample_rate_hz: int, settings: DominantToneSettings = DominantToneSettings()):
        super().__init__()
        self.settings = settings
        self.sample_rate_hz = sample_rate_hz
        self.window_samples = round(settings.window_ms * sample_rate_hz / 1000)
        frequency_hz, level_db_spl = dominant_partials(lanes, sample_rate_hz, self.window_samples, settings)
        lower_db = absolute_threshold_db_spl(frequency_hz)
        upper_db = level_db_spl - settings.headroom_db
        upper_db = torch.where(level_db_spl >= settings.silence_threshold_db_spl, upper_db, torch.full_like(upper_db, -math.inf))
        upper_db = neighbour_minimum(upper_db)
        active = upper_db > lower_db
        self.register_buffer("frequency_hz", frequency_hz)  # (L, T)
        self.register_buffer("music_level_db_spl", level_db_spl)  # (L, T)
        self.register_buffer("lower_db_spl", lower_db)  # (L, T)
        self.register_buffer("upper_db_spl", torch.where(active, upper_db, lower_db))  # (L, T)
        self.register_buffer("active", active)  # (L, T) bool: windows that carry noise
        self.register_buffer("start_phase", _continuous_start_phase(frequency_hz, self.window_samples / sample_rate_hz))
        self.level_logit = nn.Parameter(torch.full_like(frequency_hz, settings.initial_parameter))
        self.phase_offset = nn.Parameter(torch.zeros_like(frequency_hz))  # radians

    @torch.no_grad()
    def randomise(self, generator: torch.Generator) -> None:
        """Random parameters, no optimisation (the benchmark's control): level logits ~ N(0, 1),
        i.e. levels spread over the whole allowed range, and phase offsets uniform in [0, 2π)."""
        self.level_logit.copy_(torch.randn(self.level_logit.shape, generator=generator))
        self.phase_offset.copy_(2 * math.pi * torch.rand(self.phase_offset.shape, generator=generator))

    def active_share(self) -> float:
        """Share of windows (of every lane) that carry noise."""
        return float(self.active.float().mean())

    @property
    def alignment_samples(self) -> int:
        """Segments handed to `noise` must start on a multiple of this many samples."""
        return self.window_samples

    def level_db_spl(self) -> Tensor:
        """Noise level per window (L, T) in dB SPL, inside [T_H(ν_t), M_t − headroom]."""
        return sigmoid_between(self.level_logit, self.lower_db_spl, self.upper_db_spl)

    def amplitude(self) -> Tensor:
        """Peak amplitude of each window's sine (L, T), full scale = 1; zero where inactive."""
        level = db_spl_to_amplitude(self.level_db_spl(), self.settings.full_scale_db_spl)
        return torch.where(self.active, level, torch.zeros_like(level))

    def noise(self, starts: Tensor, num_samples: int) -> Tensor:
        """Noise of the segments starting at `starts` (B,), shape (B, L, num_samples), differentiable."""
        if num_samples % self.window_samples == 0 and bool((starts % self.window_samples == 0).all()):
            return self._window_aligned_tones(starts, num_samples // self.window_samples)
        positions = starts[:, None].double() + torch.arange(num_samples, dtype=torch.float64, device=starts.device)  # (B, S)
        return self._tones(self.amplitude(), self.phase_offset, positions / self.sample_rate_hz)

    @torch.no_grad()
    def render(self, sample_rate_hz: int, num_frames: int, chunk_frames: int = 1 << 20) -> np.ndarray:
        """The whole noise at any sample rate, (L, num_frames) float32, chunk by chunk."""
        amplitude, phase_offset = self.amplitude(), self.phase_offset
        out = np.empty((amplitude.shape[0], num_frames), np.float32)
        for first in range(0, num_frames, chunk_frames):
            positions = torch.arange(first, min(first + chunk_frames, num_frames), dtype=torch.float64,
                                     device=amplitude.device)
            out[:, first : first + chunk_frames] = self._tones(amplitude, phase_offset, positions[None] / sample_rate_hz)[0].cpu().numpy()
        return out

    def _window_aligned_tones(self, starts: Tensor, windows_per_segment: int) -> Tensor:
        """`_tones` at the working rate for segments that start and end on window borders, (B, L, S).

        The same signal, laid out as (L, B, windows, samples per window): the parameters are
        read once per window instead of once per sample, which makes the PGD step's backward
        pass a sum over each window's samples instead of a scatter of every sample.
        """
        amplitude = self.amplitude()  # (L, T)
        w, num_windows = self.window_samples, amplitude.shape[-1]
        window = (starts // w)[:, None] + torch.arange(windows_per_segment, device=starts.device)  # (B, n)
        held = window.clamp(max=num_windows - 1)  # past the song's last window, its sine runs on
        offset = torch.arange(w, dtype=torch.float64, device=starts.device)
        local_s = (((window - held)[..., None] * w + offset) / self.sample_rate_hz).float()  # (B, n, w)
        phase = self.start_phase[:, held][..., None] + 2 * math.pi * self.frequency_hz[:, held][..., None] * local_s
        # Centre interpolation as in `_tones`: a sample at offset j of window t lies between the
        # centres of t − 1 and t when j/w < 1/2, else between those of t and t + 1.
        first_half = int((offset / w < 0.5).sum())
        fraction = torch.cat([offset[:first_half] / w + 0.5, offset[first_half:] / w - 0.5]).float()  # (w,)
        halves = [(window - 1).clamp(0, num_windows - 1), window.clamp(0, num_windows - 1)]  # left centres

        def between_centres(values: Tensor) -> Tensor:  # (L, T) → (L, B, n, w)
            parts = []
            for left, part in zip(halves, (fraction[:first_half], fraction[first_half:])):
                low, high = values[:, left][..., None], values[:, (left + 1).clamp(max=num_windows - 1)][..., None]
                parts.append(low + (high - low) * part)
            return torch.cat(parts, dim=-1)

        tones = between_centres(amplitude) * torch.sin(phase + between_centres(self.phase_offset))
        return tones.flatten(2).transpose(0, 1)

    def _tones(self, amplitude: Tensor, phase_offset: Tensor, times_s: Tensor) -> Tensor:
        """Sum of window tones at `times_s` (B, S) in seconds → (B, L, S).

        Window t spans [t w, (t+1) w) with w = window length in seconds; its sine starts at
        phase start_phase[t]. Amplitude and phase offset are interpolated linearly between
        window centres and held constant before the first centre and after the last.
        """
        window_s = self.window_samples / self.sample_rate_hz
        num_windows = amplitude.shape[-1]
        index = torch.clamp(torch.floor(times_s / window_s).long(), 0, num_windows - 1)  # (B, S)
        local_s = (times_s - index.double() * window_s).float()
        phase = self.start_phase[:, index] + 2 * math.pi * self.frequency_hz[:, index] * local_s  # (L, B, S)
        centre = times_s / window_s - 0.5
        left = torch.floor(centre)
        fraction = (centre - left).float()
        left = torch.clamp(left.long(), 0, num_windows - 1)
        right = torch.clamp(left + 1, 0, num_windows - 1)

        def between_centres(values: Tensor) -> Tensor:  # (L, T) → (L, B, S)
            return values[:, left] + (values[:, right] - values[:, left]) * fraction

        envelope = between_centres(amplitude)
        return (envelope * torch.sin(phase + between_centres(phase_offset))).transpose(0, 1)


def dominant_partials(
    lanes: Tensor, sample_rate_hz: int, window_samples: int, settings: DominantToneSettings
) -> tuple[Tensor, Tensor]:
    """Dominant frequency (Hz) and its level (dB SPL) per window, each (L, T), T = ceil(N / window).

    The analysis frame of window t is centred on the window's centre, t w + w/2. Being longer
    than the window, it also hears the music just before and after; so the level is capped by
    what the window itself holds: a partial of amplitude A adds A²/2 to the window's mean
    square, hence A ≤ √2 · RMS. A window of digital silence has no dominant note.
    """
    num_samples = lanes.shape[-1]
    num_windows = -(-num_samples // window_samples)
    n_fft = 1 << max(int(math.ceil(math.log2(settings.analysis_ms * sample_rate_hz / 1000))), 4)
    padded = torch.nn.functional.pad(lanes, (0, num_windows * window_samples - num_samples))
    chunk_windows = max(int(settings.analysis_chunk_s * sample_rate_hz / window_samples), 1)
    parts = [_peaks(padded, first, min(first + chunk_windows, num_windows), window_samples, n_fft,
                    sample_rate_hz, settings) for first in range(0, num_windows, chunk_windows)]
    frequency_hz, level_db_spl = (torch.cat(values, dim=-1) for values in zip(*parts))
    window_rms = padded.reshape(*padded.shape[:-1], num_windows, window_samples).square().mean(dim=-1).sqrt()
    window_cap_db_spl = amplitude_to_db_spl(math.sqrt(2) * window_rms, settings.full_scale_db_spl)
    return frequency_hz.float(), torch.minimum(level_db_spl, window_cap_db_spl).float()


def _peaks(padded: Tensor, first: int, last: int, window_samples: int, n_fft: int, sample_rate_hz: int,
           settings: DominantToneSettings) -> tuple[Tensor, Tensor]:
    """Strongest in-band peak (frequency Hz, level dB SPL), each (L, last − first), of windows first … last − 1.

    The spectrum frames of these windows only, centred on their centres, computed on a slice
    with a margin of whole windows on each side (zeros beyond the song, as a centred STFT
    pads), so that long songs are analysed chunk by chunk in bounded memory.
    """
    margin = -(-(n_fft // 2) // window_samples)  # windows
    start = (first - margin) * window_samples + window_samples // 2
    stop = (last - 1 + margin) * window_samples + window_samples // 2 + 1
    piece = padded[..., max(start, 0) : min(stop, padded.shape[-1])]
    piece = torch.nn.functional.pad(piece, (max(-start, 0), max(stop - padded.shape[-1], 0)))
    spectrum = spectrum_db_spl(piece, n_fft, window_samples, full_scale_db_spl=settings.full_scale_db_spl)
    spectrum = spectrum[..., margin : margin + last - first, :]  # (L, T_chunk, K)
    bin_hz = sample_rate_hz / n_fft
    low = max(int(math.ceil(settings.min_frequency_hz / bin_hz)), 1)
    high = min(int(settings.max_frequency_hz / bin_hz), n_fft // 2 - 1, int(0.45 * sample_rate_hz / bin_hz))
    peak = spectrum[..., low : high + 1].argmax(dim=-1, keepdim=True) + low  # (L, T_chunk, 1)
    below, centre, above = (torch.gather(spectrum, -1, peak + shift)[..., 0] for shift in (-1, 0, 1))
    # Parabolic interpolation of the dB spectrum around the peak (Smith, Spectral Audio Signal
    # Processing, "Quadratic Interpolation of Spectral Peaks").
    curvature = below - 2 * centre + above
    offset = torch.where(curvature < 0, 0.5 * (below - above) / curvature.clamp(max=-1e-9), torch.zeros_like(centre))
    offset = offset.clamp(-0.5, 0.5)
    return (peak[..., 0] + offset) * bin_hz, centre - 0.25 * (below - above) * offset


def _continuous_start_phase(frequency_hz: Tensor, window_s: float) -> Tensor:
    """Phase at the start of each window so that consecutive windows' sines join (L, T), radians."""
    advance = 2 * math.pi * frequency_hz.double() * window_s  # phase a window's sine runs through
    start = torch.cumsum(advance, dim=-1) - advance
    return torch.remainder(start, 2 * math.pi).float()
