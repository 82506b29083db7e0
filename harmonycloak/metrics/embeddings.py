"""Audio embedders for the Fréchet Audio Distance (`harmonycloak.metrics.audio`).

Two embedders, both callables ``embedder(waveform (samples,), sample_rate_hz) -> (patches, dim)``:

* `VGGishEmbedder`: VGGish [Hershey2017], the embedder of the paper's FAD (§5.1, its [66]) and
  of [Kilgour2019], in PyTorch with the layer layout of the torchvggish port
  (harritaylor/torchvggish), loading the user's weights file (a ``state_dict`` saved with
  ``torch.save``, e.g. that port's ``vggish-10086976.pth``). Weights cannot be downloaded on
  our machines, so nothing is fetched: without a file there is no VGGish.
* `SpectralStatisticsEmbedder`: the offline default. A fixed, deterministic, weight-free
  description of each 0.96 s patch (the VGGish patch): per mel band the mean and standard
  deviation over the patch of the project's log-mel front end (`LogMelFrontend`, 64 bands,
  16 kHz), and the patch's normalised chroma (12 pitch classes). What it captures: spectral
  envelope and timbre (band means), loudness dynamics and onsets per band (band deviations),
  harmony/key (chroma). What it does not: anything learned, semantics (instrument identity,
  genre), structure longer than 0.96 s; its FAD is not on the scale of published VGGish FADs
  and must only be compared with FADs from the same embedder. Chosen over basic-pitch's ONNX
  activations because it needs no optional dependency (it runs in CI and on every user's
  machine) and every number in it has a plain meaning.

References
----------
[Hershey2017] S. Hershey et al., "CNN architectures for large-scale audio classification",
    ICASSP 2017 (VGGish; its input features are in the ``vggish_input.py`` and
    ``mel_features.py`` of the tensorflow/models ``research/audioset/vggish`` release).
[Kilgour2019] see `harmonycloak.metrics.audio`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend, hz_to_mel
from harmonycloak.resampling import resample


def resample_mono(waveform: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy) of a mono waveform (samples,) → float32 (samples',)."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise SettingsError(f"expected a mono waveform (samples,); got shape {waveform.shape}")
    if from_hz <= 0 or to_hz <= 0:
        raise SettingsError(f"sample rates must be positive; got {from_hz} and {to_hz}")
    if from_hz == to_hz:
        return waveform
    return resample(waveform, from_hz, to_hz).astype(np.float32)


# --- VGGish -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VGGishFeatureConfig:
    """VGGish's input features, fixed by the released model (vggish_params.py)."""

    sample_rate_hz: int = 16_000
    window_samples: int = 400  # 25 ms STFT window (periodic Hann)
    hop_samples: int = 160  # 10 ms hop
    fft_size: int = 512  # next power of two above the window
    n_mels: int = 64
    low_hz: float = 125.0
    high_hz: float = 7500.0
    log_offset: float = 0.01  # log(mel magnitude + 0.01), natural log
    patch_frames: int = 96  # 0.96 s patches, 64 bands each
    patch_hop_frames: int = 96  # non-overlapping patches, as in the released model's use


def vggish_mel_matrix(config: VGGishFeatureConfig = VGGishFeatureConfig()) -> np.ndarray:
    """VGGish's mel weights, float64 (fft_size // 2 + 1, n_mels).

    As ``mel_features.spectrogram_to_mel_matrix``: triangles laid out *in mel units* (not in
    Hz, unlike `harmonycloak.models.frontend.mel_filterbank`, hence a separate matrix — the
    weights were trained on these features), HTK mel scale, band edges evenly spaced in mel
    from ``low_hz`` to ``high_hz``, the DC bin zeroed.
    """
    bins = config.fft_size // 2 + 1
    bins_mel = hz_to_mel(torch.linspace(0.0, config.sample_rate_hz / 2, bins, dtype=torch.float64)).numpy()
    edges_mel = np.linspace(float(hz_to_mel(config.low_hz)), float(hz_to_mel(config.high_hz)), config.n_mels + 2)
    lower, centre, upper = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def vggish_examples(
    waveform: np.ndarray, sample_rate_hz: int, config: VGGishFeatureConfig = VGGishFeatureConfig()
) -> np.ndarray:
    """VGGish input patches of a mono waveform: float32 (patches, 1, 96, 64).

    As ``vggish_input.waveform_to_examples``: resample to 16 kHz; frames of 400 samples every
    160, no padding (``1 + (N − 400) // 160`` frames); periodic Hann; magnitude (not power)
    of a 512-point FFT; mel weights (`vggish_mel_matrix`); ``log(mel + 0.01)``; patches of 96
    frames every 96. A clip shorter than one patch gives zero patches.
    """
    samples = resample_mono(waveform, sample_rate_hz, config.sample_rate_hz).astype(np.float64)
    num_frames = 1 + (len(samples) - config.window_samples) // config.hop_samples if len(samples) >= config.window_samples else 0
    num_patches = 1 + (num_frames - config.patch_frames) // config.patch_hop_frames if num_frames >= config.patch_frames else 0
    if num_patches == 0:
        return np.zeros((0, 1, config.patch_frames, config.n_mels), dtype=np.float32)
    index = np.arange(config.window_samples)[None, :] + config.hop_samples * np.arange(num_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(config.window_samples) / config.window_samples)  # periodic
    magnitude = np.abs(np.fft.rfft(samples[index] * window, config.fft_size))  # (frames, bins)
    log_mel = np.log(magnitude @ vggish_mel_matrix(config) + config.log_offset)  # (frames, n_mels)
    starts = np.arange(num_patches) * config.patch_hop_frames
    patches = np.stack([log_mel[s:s + config.patch_frames] for s in starts])  # (patches, 96, 64)
    return patches[:, None].astype(np.float32)


class VGGish(nn.Module):
    """VGGish [Hershey2017]: log-mel patches (B, 1, 96, 64) → embeddings (B, 128).

    The layer layout and parameter names of harritaylor/torchvggish, so that its state_dict
    loads as it is: ``features`` = four blocks of 3×3 convolutions (64 | 128 | 256, 256 |
    512, 512 channels, ReLU) each followed by 2×2 max pooling, giving (B, 512, 6, 4);
    ``embeddings`` = 12288 → 4096 → 4096 → 128, ReLU after each (the released model's
    post-ReLU embedding; its PCA + 8-bit quantisation post-processing is not applied, as in
    FAD implementations that read the raw embedding).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if width == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(width)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True)
        )

    def forward(self, patches: Tensor) -> Tensor:  # (B, 1, 96, 64) → (B, 128)
        x = self.features(patches)  # (B, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channels last, as the TF original flattens
        return self.embeddings(x)


class VGGishEmbedder:
    """`Embedder` that runs `VGGish` with the user's weights; see `from_file`."""

    def __init__(self, model: VGGish, config: VGGishFeatureConfig = VGGishFeatureConfig(), batch_size: int = 32) -> None:
        self.model = model.eval()
        self.config = config
        self.batch_size = batch_size

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "VGGishEmbedder":
        """Load VGGish weights from a state_dict file (``torch.save(model.state_dict(), path)``).

        Accepts the torchvggish file, a dict holding the weights under "state_dict" or
        "model", and keys prefixed with "module." (DataParallel); PCA parameters
        ("pproc.*") are ignored.

        Raises:
            ModelError: the file is missing, is not a torch file, or does not hold VGGish's
                weights (missing or unexpected keys, or wrong shapes), named in the message.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError("no such VGGish weights file", path)
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises pickle, zip and runtime errors for bad files
            raise ModelError(f"not a PyTorch weights file ({type(error).__name__}: {error})", path) from None
        if isinstance(loaded, dict):
            for key in ("state_dict", "model"):
                if isinstance(loaded.get(key), dict):
                    loaded = loaded[key]
        if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
            raise ModelError("does not hold a state_dict of tensors", path)
        state = {k.removeprefix("module."): v for k, v in loaded.items() if not k.removeprefix("module.").startswith("pproc.")}
        with torch.device("meta"):  # shapes only: no 67M-parameter initialisation to throw away
            model = VGGish()
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ModelError(
                f"is not a VGGish state_dict: missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}",
                path,
            )
        wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items() if state[k].shape != v.shape]
        if wrong:
            raise ModelError(f"has VGGish's names with wrong shapes: {', '.join(wrong[:3])}", path)
        model.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, assign=True)
        return cls(model, **kwargs)

    def __call__(self, waveform: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Mono waveform (samples,) → embeddings float32 (patches, 128), one per 0.96 s."""
        patches = torch.from_numpy(vggish_examples(waveform, sample_rate_hz, self.config))
        with torch.no_grad():
            parts = [self.model(patches[i:i + self.batch_size]) for i in range(0, len(patches), self.batch_size)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, 128), dtype=np.float32)


# --- The offline default ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpectralStatisticsConfig:
    frontend: FrontendConfig = FrontendConfig()  # 16 kHz, 64 log-mel bands, 10 ms frames
    patch_frames: int = 96  # 0.96 s patches, as VGGish
    chroma_low_hz: float = 55.0  # A1: lowest frequency counted into the chroma
    chroma_high_hz: float = 4_200.0  # about C8: the top of the piano


class SpectralStatisticsEmbedder:
    """Offline default `Embedder`: per 0.96 s patch, [mean of each log-mel band (64), standard
    deviation of each band over the patch's frames (64), chroma (12)] → (patches, 140).

    Log-mel frames come from `LogMelFrontend` (values in [-1, 1]). Chroma: the STFT power of
    each bin between ``chroma_low_hz`` and ``chroma_high_hz`` is added to the pitch class of
    its nearest equal-tempered pitch (A4 = 440 Hz), summed over the patch and divided by its
    total (a patch of silence gives zeros). Deterministic, no weights; see the module
    docstring for what it captures. A clip shorter than one patch gives zero patches.
    """

    def __init__(self, config: SpectralStatisticsConfig = SpectralStatisticsConfig()) -> None:
        self.config = config
        self.frontend = LogMelFrontend(config.frontend)
        n_fft, rate = config.frontend.n_fft, config.frontend.sample_rate_hz
        bin_hz = np.arange(n_fft // 2 + 1) * rate / n_fft
        in_range = (bin_hz >= config.chroma_low_hz) & (bin_hz <= config.chroma_high_hz)
        pitch_class = np.mod(np.round(69 + 12 * np.log2(np.maximum(bin_hz, 1e-6) / 440.0)), 12).astype(int)
        folding = np.zeros((n_fft // 2 + 1, 12), dtype=np.float32)  # (bins, 12)
        folding[np.flatnonzero(in_range), pitch_class[in_range]] = 1.0
        self.chroma_folding = torch.from_numpy(folding)

    @property
    def dim(self) -> int:
        return 2 * self.config.frontend.n_mels + 12

    def __call__(self, waveform: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Mono waveform (samples,) → float32 (patches, 140)."""
        config = self.config.frontend
        samples = torch.from_numpy(resample_mono(waveform, sample_rate_hz, config.sample_rate_hz))
        num_patches = (len(samples) // config.hop_length) // self.config.patch_frames
        if num_patches == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.no_grad():
            log_mel = self.frontend(samples[None])[0]  # (frames, n_mels)
            spectrum = torch.stft(samples, config.n_fft, config.hop_length, window=self.frontend.window,
                                  center=True, return_complex=True)  # (bins, frames)
            chroma_frames = (spectrum.abs().square().T @ self.chroma_folding)  # (frames, 12)
        used = num_patches * self.config.patch_frames
        log_mel = log_mel[:used].reshape(num_patches, self.config.patch_frames, -1)  # (P, 96, n_mels)
        chroma = chroma_frames[:used].reshape(num_patches, self.config.patch_frames, 12).sum(dim=1)  # (P, 12)
        chroma = chroma / chroma.sum(dim=1, keepdim=True).clamp_min(1e-12)
        features = torch.cat([log_mel.mean(dim=1), log_mel.std(dim=1, correction=0), chroma], dim=1)
        return features.numpy().astype(np.float32)
