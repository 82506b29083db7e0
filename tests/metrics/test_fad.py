"""Fréchet Audio Distance: the Gaussian Fréchet distance against closed forms and scipy's sqrtm,
the VGGish loading code on random weights, and the offline default embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.metrics.audio import frechet_audio_distance, frechet_distance, gaussian_statistics
from harmonycloak.metrics.embeddings import (
    SpectralStatisticsEmbedder,
    VGGish,
    VGGishEmbedder,
    vggish_examples,
    vggish_mel_matrix,
)

RATE_HZ = 16_000


def random_spd(rng, dim):
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mean, cov = rng.normal(size=5), random_spd(rng, 5)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_covariances_match_the_closed_form():
    # Diagonal Σ: Tr((Σa Σb)^½) = Σ_i sqrt(a_i b_i), so FD = |μa−μb|² + Σ_i (sqrt a_i − sqrt b_i)².
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    by_hand = (1 + 0 + 4) + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2  # = 11
    assert frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(by_hand, rel=1e-12)


def test_general_covariances_agree_with_scipy_sqrtm():
    rng = np.random.default_rng(1)
    dim = 8
    mean_a, mean_b = rng.normal(size=dim), rng.normal(size=dim)
    cov_a, cov_b = random_spd(rng, dim), random_spd(rng, dim)
    reference = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(reference, rel=1e-9)
    # symmetric in its two Gaussians
    assert frechet_distance(mean_b, cov_b, mean_a, cov_a) == pytest.approx(reference, rel=1e-9)


def test_singular_covariances_stay_finite():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))  # 3 samples in 10 dims: rank 2
    distance = frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
    assert np.isfinite(distance) and distance > 0


def test_bad_statistics_raise_the_root_error():
    with pytest.raises(SettingsError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(SettingsError):
        gaussian_statistics(np.zeros((1, 4)))


def tone(frequency_hz, seconds=2.0, amplitude=0.5, rate_hz=RATE_HZ):
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def test_default_embedder_fad_is_zero_for_the_same_set_and_grows_with_difference():
    rng = np.random.default_rng(3)
    embedder = SpectralStatisticsEmbedder()
    real = [tone(f) + 0.01 * rng.normal(size=2 * RATE_HZ).astype(np.float32) for f in (220, 330, 440, 550)]
    near = [tone(f * 1.01) + 0.01 * rng.normal(size=2 * RATE_HZ).astype(np.float32) for f in (220, 330, 440, 550)]
    noise = [0.3 * rng.normal(size=2 * RATE_HZ).astype(np.float32) for _ in range(4)]
    same = frechet_audio_distance(real, real, RATE_HZ)  # None: the default embedder
    close = frechet_audio_distance(real, near, RATE_HZ, embedder)
    far = frechet_audio_distance(real, noise, RATE_HZ, embedder)
    print(f"default-embedder FAD: same {same:.4f}, tones 1% sharp {close:.3f}, white noise {far:.3f}")
    assert same == pytest.approx(0.0, abs=1e-6)
    assert close < far


def test_default_embedder_chroma_finds_the_pitch_class_of_a_tone():
    embedder = SpectralStatisticsEmbedder()
    features = embedder(tone(440.0), RATE_HZ)  # A4
    assert features.shape == (2, 140)  # 2 s = 2 patches of 0.96 s
    chroma = features[:, 128:]
    assert np.all(chroma.argmax(axis=1) == 9)  # pitch class A
    np.testing.assert_allclose(chroma.sum(axis=1), 1.0, rtol=1e-5)
    # resampling: the same tone at 44.1 kHz gives nearly the same features
    at_44k = embedder(tone(440.0, rate_hz=44_100), 44_100)
    np.testing.assert_allclose(at_44k, features, atol=0.02)


def test_vggish_features_follow_the_released_framing():
    config_patches = vggish_examples(tone(1000.0, seconds=3.0), RATE_HZ)
    # 3 s: 1 + (48000 − 400) // 160 = 298 frames → 3 patches of 96
    assert config_patches.shape == (3, 1, 96, 64)
    weights = vggish_mel_matrix()
    band_centre_hz = (np.arange(257) * 16_000 / 512) @ weights / weights.sum(axis=0)
    loudest_band = config_patches[0, 0].mean(axis=0).argmax()
    assert abs(band_centre_hz[loudest_band] - 1000.0) < 60.0
    assert vggish_examples(tone(1000.0, seconds=0.5), RATE_HZ).shape[0] == 0


def test_vggish_loads_saved_random_weights_and_embeds(tmp_path):
    torch.manual_seed(0)
    model = VGGish()
    path = tmp_path / "vggish.pth"
    torch.save(model.state_dict(), path)
    embedder = VGGishEmbedder.from_file(path)
    clip = tone(440.0, seconds=2.0)
    expected = model.eval()(torch.from_numpy(vggish_examples(clip, RATE_HZ))).detach().numpy()
    got = embedder(clip, RATE_HZ)
    assert got.shape == (2, 128)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def constant_vggish_state(value: float = 0.01) -> dict:
    """VGGish's names and shapes, each tensor one stored number expanded (a small file)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in VGGish().state_dict().items()}
    return {k: torch.full((1,), value * (i + 1)).expand(shape) for i, (k, shape) in enumerate(shapes.items())}


def test_vggish_loads_wrapped_and_prefixed_files(tmp_path):
    state = constant_vggish_state()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "wrapped.pth")
    loaded = VGGishEmbedder.from_file(tmp_path / "wrapped.pth").model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert loaded[key].shape == value.shape
        ends = loaded[key].reshape(-1)[[0, -1]]  # first and last element: each tensor's own constant
        torch.testing.assert_close(ends, value.reshape(-1)[[0, -1]])


def test_vggish_bad_files_raise_model_error(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        VGGishEmbedder.from_file(garbage)
    with pytest.raises(ModelError, match="no such"):
        VGGishEmbedder.from_file(tmp_path / "missing.pth")
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), other)
    with pytest.raises(ModelError, match="missing"):
        VGGishEmbedder.from_file(other)
    state = constant_vggish_state()
    state["embeddings.4.weight"] = torch.zeros(64, 4096)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(ModelError, match="wrong shapes"):
        VGGishEmbedder.from_file(wrong)
