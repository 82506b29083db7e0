"""Fine-tuning as the style-mimicry attacker does it: adapters, frozen layers, augmented crops.

Expected values come from the arithmetic of each case (parameter counts by hand, a tone's
frequency times the speed, a gain in dB from an RMS ratio), never from runs of the code.
"""

import copy
import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from harmonycloak.cloak.model_input import segment_starts
from harmonycloak.errors import SettingsError
from harmonycloak.models.registry import build_model
from harmonycloak.optim.finetune import (
    FinetuneRecipe,
    add_lora_adapters,
    choose_trainable,
    crop_batch,
    cut_crop,
    draw_crop,
    finetune,
    layer_order,
    merge_lora_adapters,
    song_tokens,
    token_crop_batch,
    trainable_parameter_count,
)
from harmonycloak.settings import WORKING_RATE_HZ

RATE = WORKING_RATE_HZ
AUDIO_FAMILIES = ("ar-transformer", "ar-gru", "ar-tcn")
NO_AUGMENTATION = dict(augment_gain=False, augment_speed=False)


class Toy(nn.Module):
    """A model of the protocol around any network: its loss is the mean square of the output."""

    kind = "audio"
    family = "toy"

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.net = network

    def generative_loss(self, inputs: Tensor) -> Tensor:
        return self.net(inputs).square().flatten(1).mean(1)


def mlp() -> Toy:
    torch.manual_seed(0)
    return Toy(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)))


def melody(seconds: float) -> np.ndarray:
    """Four notes, a quarter second each, repeated: (N,) float32 at the working rate."""
    time = np.arange(round(seconds * RATE)) / RATE
    notes = np.array([262.0, 330.0, 392.0, 523.0])
    return (0.3 * np.sin(2 * np.pi * notes[(time * 4).astype(int) % 4] * time)).astype(np.float32)


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


# --- which weights train ---------------------------------------------------------------------


@pytest.mark.parametrize("family", AUDIO_FAMILIES)
def test_lora_starts_as_the_base_model_exactly(family):
    base, adapted = build_model(family, "tiny", seed=1), build_model(family, "tiny", seed=1)
    adapted_weights = add_lora_adapters(adapted, 2, 4.0, ("linear", "conv", "attention"), torch.Generator())
    # the same weights need gradients in both: PyTorch picks its GRU and attention kernels by that, and they round apart
    base.requires_grad_(False)
    for name in adapted_weights:
        base.get_parameter(name).requires_grad_(True)
    waveform = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(base.predict(base.features(waveform))[0], adapted.predict(adapted.features(waveform))[0])
    base.eval(), adapted.eval()
    with torch.no_grad():  # inference: PyTorch's fused transformer path reads the weights directly
        assert torch.equal(base.generative_loss(waveform), adapted.generative_loss(waveform))


def test_trained_adapters_act_on_every_path_and_merge_into_the_weights():
    model = build_model("ar-transformer", "tiny", seed=1)
    base = copy.deepcopy(model)
    add_lora_adapters(model, 2, 2.0, ("linear", "attention"), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("lora_b"):
                parameter.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(len(name)))
    waveform = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(2))
    training_path = model.generative_loss(waveform)
    model.eval()
    with torch.no_grad():
        fused_path = model.generative_loss(waveform)
        base.eval()
        assert not torch.allclose(fused_path, base.generative_loss(waveform))
    assert torch.allclose(fused_path, training_path, rtol=1e-4)
    copied = copy.deepcopy(model)  # the benchmark copies fine-tuned models
    merge_lora_adapters(model)
    assert sorted(name for name, _ in model.named_parameters()) == sorted(name for name, _ in base.named_parameters())
    with torch.no_grad():
        assert torch.allclose(model.generative_loss(waveform), copied.generative_loss(waveform), rtol=1e-5)


def test_only_the_adapters_receive_gradients():
    model = build_model("ar-transformer", "tiny", seed=0)
    names = add_lora_adapters(model, 2, 2.0, ("linear", "conv", "attention"), torch.Generator().manual_seed(0))
    assert len(names) == 6  # input projection, attention in- and out-projection, two feed-forward layers, head
    model.generative_loss(0.1 * torch.randn(2, 4000)).mean().backward()
    with_gradient = {name for name, p in model.named_parameters() if p.grad is not None}
    adapters = {name for name, _ in model.named_parameters() if name.endswith(("lora_a", "lora_b"))}
    assert with_gradient == adapters and len(adapters) == 2 * len(names)


def test_trainable_parameter_counts_by_hand():
    # Linear(4→8), Linear(8→8), Linear(8→2): 4·8+8, 8·8+8, 8·2+2 parameters
    counts = {}
    for recipe in (FinetuneRecipe(kind="full"), FinetuneRecipe(kind="last-layers", last_layers=1),
                   FinetuneRecipe(kind="last-layers", last_layers=2),
                   FinetuneRecipe(kind="last-layers", trainable_modules=("net.2",)),
                   FinetuneRecipe(kind="lora", lora_rank=2)):
        model = mlp()
        choose_trainable(model, recipe, torch.randn(3, 4), torch.Generator().manual_seed(0))
        counts[(recipe.kind, recipe.last_layers, recipe.trainable_modules)] = trainable_parameter_count(model)
    assert counts == {("full", 2, ()): 40 + 72 + 18, ("last-layers", 1, ()): 18, ("last-layers", 2, ()): 72 + 18,
                      ("last-layers", 2, ("net.2",)): 72,
                      ("lora", 2, ()): 2 * (4 + 8) + 2 * (8 + 8) + 2 * (8 + 2)}  # r·(in + out) per layer


@pytest.mark.parametrize("layer, kinds, expected", [
    # packed in-projection: q, k, v an adapter each, r·(8 + 8); the out-projection r·(8 + 8)
    (lambda: nn.MultiheadAttention(8, 2), ("attention",), 3 * 2 * (8 + 8) + 2 * (8 + 8)),
    # separate projections of keys of 4 and values of 6 features: r·(8 + 8), r·(8 + 4), r·(8 + 6) + out
    (lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=6), ("attention",), 2 * 16 + 2 * 12 + 2 * 14 + 2 * 16),
    (lambda: nn.MultiheadAttention(8, 2), ("linear",), 0),  # the out-projection is the attention's
    (lambda: nn.Conv1d(4, 6, 3), ("conv",), 2 * (4 * 3 + 6)),  # A reads in·kernel, B writes out
    (lambda: nn.Conv1d(4, 6, 3), ("linear",), 0),
])
def test_adapter_parameter_counts_by_hand(layer, kinds, expected):
    model = layer()
    if expected == 0:
        with pytest.raises(SettingsError, match="no layer"):
            add_lora_adapters(model, 2, 2.0, kinds, torch.Generator())
    else:
        add_lora_adapters(model, 2, 2.0, kinds, torch.Generator())
        assert trainable_parameter_count(model) == expected


def test_last_layers_are_the_last_the_forward_pass_reaches():
    class RegisteredBackwards(Toy):
        def __init__(self) -> None:
            super().__init__(nn.Identity())
            self.head = nn.Linear(8, 2)  # registered first, called last
            self.body = nn.Linear(4, 8)

        def generative_loss(self, inputs: Tensor) -> Tensor:
            return self.head(self.body(inputs)).square().mean(1)

    assert layer_order(RegisteredBackwards(), torch.randn(1, 4)) == ["body", "head"]
    # PyTorch's post-norm block computes norm2(y + linear2(linear1(y))) with y = norm1(x + attention(x));
    # the attention reads its out-projection's weight itself, so that one follows the attention
    block = Toy(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True))
    assert layer_order(block, torch.randn(1, 3, 8)) == [
        "net.self_attn", "net.self_attn.out_proj", "net.norm1", "net.linear1", "net.linear2", "net.norm2"]


@pytest.mark.parametrize("kind", ["lora", "last-layers"])
def test_frozen_weights_stay_bitwise_the_same_through_a_finetune(kind):
    model = build_model("ar-transformer", "tiny", seed=0)
    before = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    song = melody(0.5)
    loss_before = model.generative_loss(torch.from_numpy(song)[None]).item()
    recipe = FinetuneRecipe(kind=kind, steps=3, segment_s=0.25, batch_segments=2, learning_rate=1e-2, lora_rank=2)
    finetune(model, [song], recipe, seed=0)
    last_two_layers = {"output_norm.weight", "output_norm.bias", "head.weight", "head.bias"}
    trained = {"lora": set(), "last-layers": last_two_layers}[kind]
    for name, (parameter, value) in before.items():
        assert torch.equal(parameter, value) != (name in trained), name
    assert model.generative_loss(torch.from_numpy(song)[None]).item() != loss_before


def test_trainable_modules_must_exist():
    with pytest.raises(SettingsError, match="no module named decoder"):
        choose_trainable(mlp(), FinetuneRecipe(kind="last-layers", trainable_modules=("decoder",)), torch.randn(1, 4),
                         torch.Generator())
    with pytest.raises(SettingsError, match="3 layers"):
        choose_trainable(mlp(), FinetuneRecipe(kind="last-layers", last_layers=4), torch.randn(1, 4), torch.Generator())


# --- augmentation ----------------------------------------------------------------------------


def test_crops_are_windows_from_inside_the_songs_every_place_equally_likely():
    segment = 100
    songs = [np.arange(199, dtype=np.float32), 1000 + np.arange(499, dtype=np.float32)]  # 100 and 400 places
    recipe = FinetuneRecipe(segment_s=segment / RATE, **NO_AUGMENTATION)
    generator = torch.Generator().manual_seed(0)
    draws = [draw_crop([199, 499], segment, recipe, generator) for _ in range(2000)]
    for draw in draws[:50]:
        crop = cut_crop(songs, draw, segment).numpy()
        assert 0 <= draw.start_sample <= len(songs[draw.song]) - segment
        assert np.array_equal(crop, songs[draw.song][draw.start_sample:draw.start_sample + segment])
    assert abs(np.mean([draw.song == 0 for draw in draws]) - 100 / 500) < 0.04
    starts = [draw.start_sample for draw in draws if draw.song == 1]
    assert min(starts) < 20 and max(starts) > 380  # the whole song is used, ends included


def test_a_song_shorter_than_a_crop_is_followed_by_silence_and_tiled_crops_start_on_the_tiling():
    short = np.ones(60, np.float32)
    recipe = FinetuneRecipe(segment_s=100 / RATE, **NO_AUGMENTATION)
    crop = cut_crop([short], draw_crop([60], 100, recipe, torch.Generator()), 100).numpy()
    assert np.array_equal(crop, np.concatenate([short, np.zeros(40, np.float32)]))
    tiled = FinetuneRecipe(segment_s=100 / RATE, random_crop=False, **NO_AUGMENTATION)
    generator = torch.Generator().manual_seed(0)
    starts = {draw_crop([250], 100, tiled, generator).start_sample for _ in range(100)}
    assert starts == set(segment_starts(250, 100).tolist()) == {0, 100, 150}


def test_crops_on_a_grid_start_on_its_multiples_and_reach_every_one_of_them():
    # songs of 199 and 499 samples, crops of 100 on a grid of 30: starts 0..90 (4) and 0..390 (14)
    recipe = FinetuneRecipe(segment_s=100 / RATE, crop_grid_samples=30, **NO_AUGMENTATION)
    generator = torch.Generator().manual_seed(0)
    draws = [draw_crop([199, 499], 100, recipe, generator) for _ in range(3000)]
    assert {draw.start_sample for draw in draws if draw.song == 0} == set(range(0, 91, 30))
    assert {draw.start_sample for draw in draws if draw.song == 1} == set(range(0, 391, 30))
    assert abs(np.mean([draw.song == 0 for draw in draws]) - 4 / 18) < 0.04  # every start equally likely


def token_recipe(hop: int, **fields) -> FinetuneRecipe:
    return FinetuneRecipe(segment_s=24 * hop / RATE, crop_grid_samples=hop, tokenise_songs=True, **NO_AUGMENTATION,
                          **fields)


def test_token_crops_are_the_waveform_crops_codes_away_from_the_codec_s_reach_past_their_edges():
    """The same draws as the waveform crops; each crop's codes, read alone, differ only within the
    tiny codec's receptive field of its edges (two frames: a one-sample change moves frames ±2)."""
    model = build_model("codec-lm", "tiny", seed=0).eval()
    hop = model.token_hop_samples
    songs = [melody(1.5), melody(0.3)]  # the second shorter than a crop (24 frames, 0.48 s)
    recipe = token_recipe(hop, batch_segments=32)
    tokens = song_tokens(model, songs, recipe.segment_samples)
    assert [len(codes) for codes in tokens] == [len(songs[0]) // hop, 24]
    drawing, cutting = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    cropped = token_crop_batch(tokens, [len(song) for song in songs], recipe, drawing)
    read_alone = model.tokens(crop_batch(songs, recipe, cutting))
    assert torch.equal(drawing.get_state(), cutting.get_state())  # drew the same crops
    assert cropped.shape == read_alone.shape == (32, 24, model.config.codec.codebooks)
    assert torch.equal(cropped[:, 2:-2], read_alone[:, 2:-2])
    assert not torch.equal(cropped, read_alone)  # the edges do see the song around the crop


def test_a_finetune_on_tokens_trains_on_the_token_crops_and_refuses_models_of_waveforms():
    model = build_model("codec-lm", "tiny", seed=0)
    songs = [melody(1.0)]
    recipe = token_recipe(model.token_hop_samples, steps=2, batch_segments=4)
    before = copy.deepcopy(model)
    first_batch = token_crop_batch(song_tokens(before, songs, recipe.segment_samples), [len(songs[0])], recipe,
                                   torch.Generator().manual_seed(7))
    curve = finetune(model, songs, recipe, seed=7)
    assert curve[0] == before.training_loss_on_tokens(first_batch, torch.Generator()).item()
    assert curve[1] != curve[0]
    with pytest.raises(SettingsError, match="codec tokens"):
        finetune(build_model("ar-gru", "tiny", seed=0), songs, recipe, seed=0)
    with pytest.raises(SettingsError, match="augmentation"):
        FinetuneRecipe(tokenise_songs=True, augment_speed=False)


def test_the_gain_measured_on_the_crop_is_the_gain_drawn():
    song = np.random.default_rng(0).normal(0.0, 0.1, RATE).astype(np.float32)
    recipe = FinetuneRecipe(segment_s=0.1, augment_speed=False, gain_db_range=(-12.0, 12.0))
    generator = torch.Generator().manual_seed(3)
    draws = [draw_crop([len(song)], 1600, recipe, generator) for _ in range(50)]
    for draw in draws:
        source = song[draw.start_sample:draw.start_sample + 1600]
        measured_db = 20 * math.log10(rms(cut_crop([song], draw, 1600)) / rms(source))
        assert measured_db == pytest.approx(draw.gain_db, abs=1e-4)
    gains = [draw.gain_db for draw in draws]
    assert -12.0 <= min(gains) < -6.0 and 6.0 < max(gains) <= 12.0


@pytest.mark.parametrize("speed", [0.9, 1.1, 1.25])
def test_a_faster_crop_moves_a_tone_up_by_the_speed_factor(speed):
    """Played k times as fast, a 1 kHz tone sounds at k kHz: the FFT peak moves by k (not 1/k)."""
    tone_hz, segment = 1000.0, RATE // 2  # half a second: FFT bins of 2 Hz
    song = np.sin(2 * np.pi * tone_hz * np.arange(RATE) / RATE).astype(np.float32)
    recipe = FinetuneRecipe(segment_s=0.5, augment_gain=False, speed_range=(speed, speed))
    draw = draw_crop([len(song)], segment, recipe, torch.Generator().manual_seed(0))
    crop = cut_crop([song], draw, segment).numpy()
    spectrum = np.abs(np.fft.rfft(crop * np.hanning(segment)))
    assert len(crop) == segment
    assert np.argmax(spectrum) * RATE / segment == pytest.approx(speed * tone_hz, abs=RATE / segment)


def test_a_faster_crop_reads_k_song_samples_per_crop_sample():
    segment, speed = 2000, 1.1
    song = (np.arange(4000) / 4000).astype(np.float32)  # a ramp: each sample's value says where it is
    recipe = FinetuneRecipe(segment_s=segment / RATE, augment_gain=False, speed_range=(speed, speed))
    draw = draw_crop([len(song)], segment, recipe, torch.Generator().manual_seed(1))
    crop = cut_crop([song], draw, segment).numpy()
    inner = np.arange(100, segment - 100)  # away from the resampling filter's edges
    np.testing.assert_allclose(crop[inner], (draw.start_sample + speed * inner) / 4000, atol=2e-3)


def test_the_same_seed_draws_the_same_batches():
    songs = [melody(0.5), melody(0.3)]
    recipe = FinetuneRecipe(segment_s=0.1, batch_segments=4)
    first, again, other = (crop_batch(songs, recipe, torch.Generator().manual_seed(seed)) for seed in (5, 5, 6))
    assert first.shape == (4, 1600) and first.dtype == torch.float32
    assert torch.equal(first, again) and not torch.equal(first, other)


# --- the attack ------------------------------------------------------------------------------


def test_a_finetune_is_fixed_by_its_seed():
    recipe = FinetuneRecipe(kind="lora", steps=3, segment_s=0.1, batch_segments=2, learning_rate=1e-2, lora_rank=2)
    runs = []
    for seed in (0, 0, 1):
        model = build_model("ar-gru", "tiny", seed=0)
        curve = finetune(model, [melody(0.4)], recipe, seed=seed)
        runs.append((curve, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0] and all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_a_full_finetune_learns_a_repeated_melody():
    song = melody(1.0)
    fixed = torch.from_numpy(song[: 4 * 4000].reshape(4, 4000))  # four clean quarter-second segments

    def evaluate(model) -> float:
        with torch.no_grad():
            return model.generative_loss(fixed).mean().item()

    model = build_model("ar-tcn", "tiny", seed=0)
    before = evaluate(model)
    recipe = FinetuneRecipe(kind="full", steps=40, segment_s=0.25, batch_segments=4, learning_rate=3e-3)
    curve = finetune(model, [song], recipe, seed=0, evaluate=evaluate, evaluate_every=10)
    assert len(curve) == 4 and curve[-1] == evaluate(model)
    assert curve[-1] < 0.6 * before


@pytest.mark.parametrize("fields", [dict(kind="adapters"), dict(steps=0), dict(learning_rate=-1.0),
                                    dict(segment_s=float("nan")), dict(lora_layers=("embedding",)),
                                    dict(gain_db_range=(6.0, -6.0)), dict(speed_range=(1.001, 1.009)),
                                    dict(speed_range=(0.0, 1.0)), dict(last_layers=0), dict(crop_grid_samples=0)])
def test_bad_recipes_are_refused_in_plain_words(fields):
    with pytest.raises(SettingsError):
        FinetuneRecipe(**fields)


def test_songs_and_models_finetune_cannot_read_are_refused():
    model = build_model("ar-gru", "tiny", seed=0)
    with pytest.raises(SettingsError, match="at least one song"):
        finetune(model, [], FinetuneRecipe(steps=1), seed=0)
    with pytest.raises(SettingsError, match="mono"):
        finetune(model, [np.zeros((2, 1000), np.float32)], FinetuneRecipe(steps=1), seed=0)
    with pytest.raises(SettingsError, match="audio model"):
        finetune(build_model("musegan", "tiny"), [melody(0.2)], FinetuneRecipe(steps=1), seed=0)


def test_every_recipe_leaves_the_parts_a_model_keeps_frozen_frozen():
    """A codec LM reads through a pretrained codec it must not train (nor put adapters on)."""
    from harmonycloak.models.registry import build_model
    from harmonycloak.optim.finetune import choose_trainable

    for kind in ("full", "last-layers", "lora"):
        model = build_model("codec-lm", "tiny", seed=0)
        codec = {id(p) for p in model.codec.parameters()}
        assert codec and not any(p.requires_grad for p in model.codec.parameters())
        recipe = FinetuneRecipe(kind=kind, last_layers=2, segment_s=0.32)
        choose_trainable(model, recipe, torch.zeros(1, 5120), torch.Generator().manual_seed(0))
        trainable = [p for p in model.parameters() if p.requires_grad]
        assert trainable and not any(id(p) in codec for p in trainable), kind
        assert not any(p.requires_grad for p in model.codec.parameters()), kind
