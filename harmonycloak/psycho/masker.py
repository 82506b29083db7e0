"""`PsychoacousticModel`: the functional model of `harmonycloak.psycho.functional` with its settings held.

A thin ``nn.Module``: it chooses the analysis window and hop for a sample rate, keeps the
per-bin constants as buffers (so ``.to(device)`` moves them) and forwards to the pure
functions. It holds no learnable parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import harmonycloak.psycho.functional as PF
from harmonycloak.errors import SettingsError
from harmonycloak.settings import FULL_SCALE_DB_SPL


class PsychoacousticModel(nn.Module):
    """Spectrum and masking threshold of waveforms at one sample rate, in dB SPL.

    Args:
        sample_rate_hz: sample rate of the waveforms it will see.
        window_ms: shortest analysis window; n_fft is the smallest power of two at least
            this long. The default 32 ms gives 512 samples (32 ms) at 16 kHz, 1024 (46 ms)
            at 22.05 kHz and 2048 (46 ms at 44.1 kHz, 43 ms at 48 kHz): long enough to
            resolve harmonics 20-30 Hz apart, as MPEG-1 model 1 does with its 1024-point FFT.
        hop_ms: time between frames; None (default) takes n_fft / 4 (8 ms at 16 kHz, 11.6 ms
            at 44.1 kHz, 10.7 ms at 48 kHz): close to the cloak's 10 ms windows, fine enough
            for pre-masking, and a hop at which Hann windows overlap-add to a constant.
        full_scale_db_spl: level of a digital full-scale sine (96 dB SPL, MPEG-1 model 1).
        temporal: add pre- and post-masking to the frequency masking threshold.
        pre_masking_ms, post_masking_ms: durations of temporal masking (Zwicker & Fastl:
            about 20 ms before and 200 ms after a masker).

    Attributes:
        n_fft, hop_length: analysis window and hop in samples.
        frequency_hz, bark, quiet_threshold_db: ``(bins,)`` buffers: bin centre frequencies,
            their Bark values and the threshold in quiet in dB SPL.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        window_ms: float = 32.0,
        hop_ms: float | None = None,
        full_scale_db_spl: float = FULL_SCALE_DB_SPL,
        temporal: bool = True,
        pre_masking_ms: float = 20.0,
        post_masking_ms: float = 200.0,
    ) -> None:
        super().__init__()
        if not sample_rate_hz > 0:
            raise SettingsError(f"the sample rate must be positive, not {sample_rate_hz} Hz")
        if not window_ms > 0 or (hop_ms is not None and not hop_ms > 0):
            raise SettingsError("the analysis window and hop must be longer than 0 ms")
        if pre_masking_ms < 0 or post_masking_ms < 0:
            raise SettingsError("pre- and post-masking durations cannot be negative")
        self.sample_rate_hz = float(sample_rate_hz)
        self.n_fft = 2 ** max(1, math.ceil(math.log2(window_ms * sample_rate_hz / 1000.0)))
        self.hop_length = self.n_fft // 4 if hop_ms is None else max(1, round(hop_ms * sample_rate_hz / 1000.0))
        if self.hop_length > self.n_fft // 2:
            raise SettingsError(
                f"a hop of {self.hop_length} samples leaves gaps between {self.n_fft}-sample windows; use at most half"
            )
        self.full_scale_db_spl = float(full_scale_db_spl)
        self.temporal = temporal
        self.pre_masking_ms = float(pre_masking_ms)
        self.post_masking_ms = float(post_masking_ms)
        frequency_hz = PF.bin_frequencies_hz(self.sample_rate_hz, self.n_fft)
        self.register_buffer("frequency_hz", frequency_hz, persistent=False)
        self.register_buffer("bark", PF.hz_to_bark(frequency_hz), persistent=False)
        self.register_buffer("quiet_threshold_db", PF.absolute_threshold_db_spl(frequency_hz), persistent=False)

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.hop_length / self.sample_rate_hz

    @property
    def stft_amplitude_scale(self) -> float:
        """Sine amplitude per unit of ``|STFT coefficient|`` (see `functional.stft_amplitude_scale`)."""
        return PF.stft_amplitude_scale(self.n_fft)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a waveform of ``num_samples`` samples: ``1 + num_samples // hop_length``."""
        return 1 + num_samples // self.hop_length

    def stft(self, waveform: torch.Tensor) -> torch.Tensor:
        """Complex STFT, ``(..., time) -> (..., frames, bins)`` (see `functional.stft`)."""
        return PF.stft(waveform, self.n_fft, self.hop_length)

    def istft(self, coefficients: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse STFT, ``(..., frames, bins) -> (..., length)`` (see `functional.istft`)."""
        return PF.istft(coefficients, self.n_fft, self.hop_length, length)

    def spectrum_db(self, waveform: torch.Tensor) -> torch.Tensor:
        """Level per frame and bin in dB SPL, ``(..., time) -> (..., frames, bins)``. Differentiable."""
        return PF.spectrum_db_spl(waveform, self.n_fft, self.hop_length, self.full_scale_db_spl)

    def masking_threshold_db(self, waveform: torch.Tensor) -> torch.Tensor:
        """Masking threshold in dB SPL, ``(..., time) -> (..., frames, bins)``. No gradient."""
        return PF.masking_threshold_db_spl(
            waveform,
            self.sample_rate_hz,
            self.n_fft,
            self.hop_length,
            full_scale_db_spl=self.full_scale_db_spl,
            temporal=self.temporal,
            pre_masking_ms=self.pre_masking_ms,
            post_masking_ms=self.post_masking_ms,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Same as `masking_threshold_db`."""
        return self.masking_threshold_db(waveform)

    def extra_repr(self) -> str:
        return (
            f"sample_rate_hz={self.sample_rate_hz:g}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"full_scale_db_spl={self.full_scale_db_spl:g}, temporal={self.temporal}"
        )
