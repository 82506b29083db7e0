import math

import pytest
import torch

from harmonycloak.errors import ModelError
from harmonycloak.models.audio_ar import NextFrameConfig, NextFrameModel
from harmonycloak.models.bag import AUDIO_BAG, build_audio_bag
from harmonycloak.models.checkpoint import load_checkpoint, save_checkpoint
from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend, hz_to_mel, mel_filterbank, mel_to_hz
from harmonycloak.models.registry import build_model
from harmonycloak.optim.training import train_generative_model

FAMILIES = ["ar-transformer", "ar-gru", "ar-tcn"]


def test_htk_mel_scale_values_by_hand():
    # 2595 log10(1 + 1000/700) = 999.98...; 2595 log10(2) at f = 700 Hz
    assert abs(hz_to_mel(1000.0).item() - 2595 * math.log10(1 + 1000 / 700)) < 1e-9
    assert abs(hz_to_mel(700.0).item() - 2595 * math.log10(2)) < 1e-9
    assert abs(mel_to_hz(hz_to_mel(3456.0)).item() - 3456.0) < 1e-6


def test_mel_filters_peak_at_their_centres_and_cover_the_band():
    bank = mel_filterbank(16_000, 512, 40)
    bin_hz = 16_000 / 512
    centres_hz = mel_to_hz(torch.linspace(hz_to_mel(30.0).item(), hz_to_mel(8000.0).item(), 42))[1:-1]
    # the peak bin of each band lies within one bin of its centre frequency, with weight ≤ 1
    assert torch.all((bank.argmax(dim=0) * bin_hz - centres_hz).abs() <= bin_hz)
    assert bank.max() <= 1.0 and bank[:, 10:].max(dim=0).values.min() > 0.5
    # neighbouring triangles cross: inside the band, the weights of every bin sum to one
    assert torch.allclose(bank.sum(dim=1)[10:240], torch.ones(230), atol=1e-5)


def test_frontend_puts_a_tone_in_its_own_band_at_plus_one():
    config = FrontendConfig(n_mels=64)
    frontend = LogMelFrontend(config)
    time = torch.arange(16_000) / 16_000
    frames = frontend(torch.sin(2 * math.pi * 1000 * time)[None])[0]  # (T, F)
    band = frames[20:-20].mean(dim=0).argmax().item()
    edges = mel_to_hz(torch.linspace(hz_to_mel(30.0).item(), hz_to_mel(8000.0).item(), 66))
    assert edges[band] < 1000 < edges[band + 2]
    assert frames.max() < 1.2 and frames.max() > 0.5  # a full-scale sine reads about +1
    silence = frontend(torch.zeros(1, 4000))
    assert torch.allclose(silence, torch.full_like(silence, -1.0), atol=1e-3)


@pytest.mark.parametrize("n_fft", [400, 512, 1024])
def test_frontend_equals_log_mel_of_torch_stft(n_fft):
    config = FrontendConfig(n_fft=n_fft, n_mels=48)
    frontend = LogMelFrontend(config)
    waveform = 0.1 * torch.randn(3, 8_000, generator=torch.Generator().manual_seed(0))
    spectrum = torch.stft(waveform, n_fft, config.hop_length, window=torch.hann_window(n_fft), center=True,
                          return_complex=True)  # reflect-padded, as the frontend's framing must be
    mel = spectrum.abs().square().transpose(1, 2) @ mel_filterbank(config.sample_rate_hz, n_fft, config.n_mels)
    half_range = -0.5 * math.log10(config.log_floor)
    expected = (torch.log10(mel * (2 / (n_fft / 2)) ** 2 + config.log_floor) + half_range) / half_range
    assert torch.allclose(frontend(waveform), expected.float(), atol=1e-4)


def test_frames_read_at_a_deep_floor_are_read_again_at_a_shallow_one_as_its_front_end_reads_the_audio():
    from harmonycloak.errors import SettingsError
    from harmonycloak.models.frontend import refloor

    shallow, deep = FrontendConfig(n_mels=32), FrontendConfig(n_mels=32, log_floor=1e-10)
    # by hand: a band energy of 10^-7 reads (log10(10^-7 + 10^-10) + 5) / 5 = -0.39991 at the deep floor, and
    # (log10(10^-7 + 10^-5) + 2.5) / 2.5 = -0.99827 at the shallow one
    by_hand = torch.tensor([[math.log10(1e-7 + 1e-10) / 5 + 1]])
    assert refloor(by_hand, deep, shallow).item() == pytest.approx(math.log10(1e-7 + 1e-5) / 2.5 + 1, abs=1e-5)
    time = torch.arange(8_000) / 16_000
    music = 0.3 * torch.sin(2 * math.pi * 440 * time) * torch.linspace(1, 1e-4, 8_000)  # fades 80 dB
    music = music + 1e-5 * torch.randn(8_000, generator=torch.Generator().manual_seed(0))
    frames = LogMelFrontend(deep)(music[None])
    assert torch.allclose(refloor(frames, deep, shallow), LogMelFrontend(shallow)(music[None]), atol=1e-4)
    assert (frames > -0.9).float().mean() > 2 * (LogMelFrontend(shallow)(music[None]) > -0.9).float().mean()
    with pytest.raises(SettingsError, match="change their floor only"):
        refloor(frames, deep, FrontendConfig(n_mels=16))


@pytest.mark.parametrize("family", FAMILIES)
def test_models_are_causal(family):
    model = build_model(family, "tiny", seed=1)
    frames = torch.randn(1, 50, model.config.frontend.n_mels)
    changed = frames.clone()
    changed[:, 30:] += 5.0
    first, _ = model.predict(frames)
    second, _ = model.predict(changed)
    assert torch.allclose(first[:, :30], second[:, :30], atol=1e-5)  # predictions up to frame 30 read frames < 30
    assert not torch.allclose(first[:, 30:], second[:, 30:])


@pytest.mark.parametrize("family", FAMILIES)
def test_a_sequence_read_in_pieces_predicts_what_it_predicts_whole(family):
    # three blocks of kernel 3: the TCN's receptive field is 1 + 2 · (1 + 2 + 4) = 15 frames,
    # shorter than the pieces after the first, so its state must carry the frames before
    model = NextFrameModel(NextFrameConfig(family=family, width=16, layers=3, heads=2)).eval()
    frames = torch.randn(2, 41, model.config.frontend.n_mels, generator=torch.Generator().manual_seed(3))
    whole, _ = model.predict(frames)  # (2, 40, F): the prediction after each of frames 0..39
    state, pieces = None, []
    with torch.no_grad():
        for start, stop in ((0, 7), (7, 8), (8, 9), (9, 40)):
            hidden, state = model.backbone.decode(model.input_projection(frames[:, start:stop]), state)
            pieces.append(model.head(model.output_norm(hidden)))
        after_last, _ = model.predict_next(frames[:, :40])
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after_last, whole[:, -1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_lowers_the_loss_on_a_repeating_melody(family):
    time = torch.arange(4 * 16_000) / 16_000
    notes = torch.tensor([262.0, 330.0, 392.0, 523.0])
    melody = 0.3 * torch.sin(2 * math.pi * notes[(time * 4).long() % 4] * time)
    segments = melody.reshape(8, -1)
    model = build_model(family, "tiny", seed=0)
    curve = train_generative_model(model, lambda ids: segments[ids], len(segments), 40,
                                   torch.Generator().manual_seed(0), learning_rate=3e-3)
    assert sum(curve[-5:]) / 5 < 0.6 * sum(curve[:5]) / 5


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_has_a_finite_gradient_with_respect_to_the_waveform(family):
    model = build_model(family, "tiny", seed=0)
    waveform = (0.1 * torch.randn(2, 8000)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.generative_loss(waveform).sum(), waveform)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_checkpoint_round_trip_keeps_outputs(tmp_path):
    model = build_model("ar-gru", "tiny", seed=3)
    path = save_checkpoint(model, "ar-gru", tmp_path / "model.pt")
    loaded, family = load_checkpoint(path)
    waveform = torch.randn(1, 4000)
    assert family == "ar-gru"
    assert torch.equal(model.generative_loss(waveform), loaded.generative_loss(waveform))


def test_bad_checkpoints_raise_model_error(tmp_path):
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a harmonycloak model checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_bag_holds_ten_distinct_models_fixed_by_the_seed():
    assert len(set(AUDIO_BAG.values())) == 10
    bag = build_audio_bag(10, seed=5, tiny=True)
    assert len({m.config for m in bag}) == 10
    again = build_audio_bag(10, seed=5, tiny=True)
    other = build_audio_bag(10, seed=6, tiny=True)
    first = lambda models: next(models[0].parameters())
    assert torch.equal(first(bag), first(again)) and not torch.equal(first(bag), first(other))
    sizes = [sum(p.numel() for p in m.parameters()) for m in build_audio_bag(10)]
    assert max(sizes) > 5 * min(sizes)  # varied in size, not only in architecture
