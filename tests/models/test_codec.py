"""The RVQ codec: shapes, gradients, determinism, the quantiser against a hand computation,
and reconstruction of held-out music and of a pure tone against silence."""

import math

import pytest
import torch

from harmonycloak.models.codec import CodecConfig, CodecModel, multi_resolution_stft_loss
from harmonycloak.models.registry import build_model


def tiny_codec(seed=0):
    return build_model("codec", "tiny", seed=seed).eval()


def test_shapes_of_tokens_and_reconstruction():
    codec = tiny_codec()
    waveform = torch.randn(2, 3200) * 0.1  # 10 frames of 320 samples
    reconstruction, commitment, codes = codec.reconstruct(waveform)
    assert reconstruction.shape == (2, 3200)
    assert commitment.shape == (2,)
    assert codes.shape == (2, 10, codec.config.codebooks)
    assert codec.decode_tokens(codes).shape == (2, 3200)
    assert int(codes.max()) < codec.config.codebook_size


def test_loss_has_a_finite_gradient_in_the_waveform():
    codec = tiny_codec()
    waveform = (torch.randn(2, 3200) * 0.1).requires_grad_()
    codec.generative_loss(waveform).sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0


def test_loss_is_deterministic_and_per_example():
    codec = tiny_codec()
    waveform = torch.randn(3, 3200) * 0.1
    first, second = codec.generative_loss(waveform), codec.generative_loss(waveform)
    assert torch.equal(first, second)
    alone = codec.generative_loss(waveform[1:2])
    torch.testing.assert_close(alone[0], first[1], rtol=1e-5, atol=1e-6)


def test_rvq_assigns_the_nearest_code_of_each_residual_by_hand():
    config = CodecConfig(channels=(4, 4, 4, 4, 4), latent_dim=2, codebooks=2, codebook_size=3)
    codec = CodecModel(config)
    codebooks = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                              [[0.0, 0.0], [0.1, 0.0], [0.0, -0.1]]])
    codec.quantizer.codebooks.copy_(codebooks)
    latents = torch.tensor([[[0.9, 0.05], [0.2, 0.7], [1.05, -0.12]]])  # (1, 3, 2)
    quantized, codes, _ = codec.quantizer.quantize(latents)
    # By hand: (0.9, 0.05) is nearest (1, 0); its residual (−0.1, 0.05) is nearest (0, 0).
    # (0.2, 0.7) → (0, 1); residual (0.2, −0.3) → (0, −0.1) (distance² 0.08 vs 0.09 to 0 and 0.10 to (0.1, 0)).
    # (1.05, −0.12) → (1, 0); residual (0.05, −0.12) → (0, −0.1).
    assert codes[0].tolist() == [[1, 0], [2, 2], [1, 2]]
    expected = torch.tensor([[[1.0, 0.0], [0.0, 0.9], [1.0, -0.1]]])
    torch.testing.assert_close(quantized, expected)


def test_ema_update_with_no_memory_moves_each_code_to_the_mean_of_its_vectors():
    config = CodecConfig(channels=(4, 4, 4, 4, 4), latent_dim=1, codebooks=1, codebook_size=2, ema_decay=0.0,
                         restart_threshold=0.0)
    codec = CodecModel(config)
    codec.quantizer.codebooks.copy_(torch.tensor([[[0.0], [10.0]]]))
    residuals = [torch.tensor([[[1.0], [3.0], [9.0]]])]
    codes = torch.tensor([[[0], [0], [1]]])
    codec.quantizer.update(residuals, codes, torch.Generator().manual_seed(0))
    torch.testing.assert_close(codec.quantizer.codebooks[0, :, 0], torch.tensor([2.0, 9.0]))


def test_stft_loss_is_zero_for_identical_signals_and_positive_otherwise():
    x = torch.randn(2, 4096)
    assert multi_resolution_stft_loss(x, x, (256, 512)).abs().max() < 1e-6
    assert (multi_resolution_stft_loss(0.5 * x, x, (256, 512)) > 0).all()


def test_the_zoo_codec_reconstructs_heldout_music_better_than_silence():
    """On held-out music the committed codec's reconstruction is closer to the music than
    silence is, by its own loss and by the magnitude spectrogram (distance 1 = silence).

    (The codec's own loss does not favour it over silence on a pure tone, whose energy sits
    in one bin: see the next test and docs/zoo.md.)
    """
    from harmonycloak.zoo import load_zoo_model
    from harmonycloak.zoo.audio_corpus import load_clip_set
    from harmonycloak.zoo.sources import ZooDataError

    try:
        clips = load_clip_set("heldout", sources=("drascula", "monteverdi"), max_files_per_source=1)
    except ZooDataError as error:
        pytest.skip(f"zoo audio not installed: {error}")
    music = clips.waveforms(range(len(clips)), 0, 16_000)
    codec = load_zoo_model("codec")
    with torch.no_grad():
        reconstruction = codec.reconstruct(music)[0]
        sizes = codec.config.stft_sizes
        assert (multi_resolution_stft_loss(reconstruction, music, sizes)
                < multi_resolution_stft_loss(torch.zeros_like(music), music, sizes)).all()
        window = torch.hann_window(1024)
        spectra = [torch.stft(x, 1024, 256, window=window, return_complex=True).abs() for x in (reconstruction, music)]
        distance = (spectra[0] - spectra[1]).square().sum(dim=(1, 2)) / spectra[1].square().sum(dim=(1, 2))
    assert (distance < 1.0).all()


def test_the_zoo_codec_reconstructs_a_pure_tone_better_than_silence():
    """A 440 Hz tone comes back with its energy at 440 Hz, and its magnitude spectrum is
    nearer the tone's than silence's is (distance below 1, the distance of silence)."""
    from harmonycloak.zoo import load_zoo_model

    codec = load_zoo_model("codec")
    time_s = torch.arange(16_000) / 16_000
    tone = 0.3 * torch.sin(2 * math.pi * 440.0 * time_s)[None]
    with torch.no_grad():
        reconstruction = codec.reconstruct(tone)[0]
    window = torch.hann_window(8000)
    spectrum = torch.fft.rfft(reconstruction[0, 4000:12000] * window).abs()  # 2 Hz bins
    target = torch.fft.rfft(tone[0, 4000:12000] * window).abs()
    assert abs(spectrum.argmax().item() * 2.0 - 440.0) <= 2.0
    assert ((spectrum - target).square().sum() / target.square().sum()).item() < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_same_seed_same_initial_weights(seed):
    a, b = tiny_codec(seed), tiny_codec(seed)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
