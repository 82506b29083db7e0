"""What a GPU machine runs: every zoo model, every objective and both attackers of the benchmark
on CUDA, checked against the same computation on the CPU (the reference), and the attackers'
training paths run there end to end. Skipped where PyTorch sees no CUDA GPU; the last test
also runs on the CPU, so that its assertions are known to hold where CI runs.

Tolerances: cuDNN's convolutions run in TF32 by default (10-bit mantissa), so a model's loss
on CUDA may differ from the CPU's by a few parts in a thousand; a device bug (a draw, a buffer
or a constant left on the other device) either raises or differs by far more.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from harmonycloak.bench.attacker_speed import example_clips
from harmonycloak.bench.unlearnability.data import DataSpec
from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP, ThreatSpec, attacker_model, song_losses
from harmonycloak.optim.objectives import build_objective
from harmonycloak.settings import OBJECTIVES
from harmonycloak.zoo import load_zoo_model
from harmonycloak.zoo.store import read_manifest, weights_dir

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
COMMITTED = sorted(name[:-3] for name in read_manifest(weights_dir()))
AUDIO_FAMILIES = tuple(FAMILY_GROUP)
LOSS_RTOL = 5e-3


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Real music: clips of the example song as long as the benchmark's songs, at the working rate."""
    return example_clips(DataSpec().song_s)


def _roll_batch(model) -> torch.Tensor:
    """Two random sparse rolls (2, M, T, 128) of the shape a MIDI model reads, velocities in [0, 1]."""
    tracks = model.num_tracks if hasattr(model, "num_tracks") else model.config.phrase.tracks
    steps = model.config.phrase.steps if hasattr(model.config, "phrase") else 2 * model.config.steps_per_bar
    generator = torch.Generator().manual_seed(0)
    notes = torch.rand(2, tracks, steps, 128, generator=generator) > 0.97
    return notes * torch.rand(2, tracks, steps, 128, generator=generator)


@CUDA
@pytest.mark.parametrize("name", COMMITTED)
def test_every_zoo_model_gives_the_same_losses_on_cuda_as_on_the_cpu(name, clips):
    cpu_model = load_zoo_model(name).eval()
    if cpu_model.kind == "audio":
        references = torch.from_numpy(np.stack(clips[2:4]))
        cpu = song_losses(cpu_model, clips[:2], references=references)
        cuda = song_losses(load_zoo_model(name).cuda(), clips[:2], references=references)
    else:
        rolls = _roll_batch(cpu_model)
        with torch.no_grad():
            cpu = cpu_model.generative_loss(rolls).tolist()
            cuda = load_zoo_model(name).cuda().eval().generative_loss(rolls.cuda()).cpu().tolist()
    assert np.isfinite(cpu).all()
    np.testing.assert_allclose(cuda, cpu, rtol=LOSS_RTOL)


@CUDA
@pytest.mark.parametrize("family", AUDIO_FAMILIES)
def test_the_gradient_the_cloak_reads_is_the_same_on_cuda_for_every_zoo_model_in_eval_mode(family, clips):
    """The cloak differentiates a loaded model's loss (eval mode) with respect to the music."""
    references = torch.from_numpy(np.stack(clips[2:4]))
    gradients = {}
    for device in ("cpu", "cuda"):
        model = load_zoo_model(family).to(device).eval()
        if family == "contrastive":
            model.set_negatives(references.to(device))
        waveform = torch.from_numpy(np.stack(clips[:2])).to(device).requires_grad_(True)
        model.generative_loss(waveform).sum().backward()
        gradients[device] = waveform.grad.cpu().flatten()
    assert gradients["cpu"].abs().max() > 0
    assert torch.nn.functional.cosine_similarity(gradients["cuda"], gradients["cpu"], dim=0) > 0.99


def _objective_models(name: str, device: str) -> list:
    """The zoo models an objective reads: the encoder for the embedding shift; a next-frame model
    and the diffusion model (whose training draws random steps and noise) for the others."""
    families = ("contrastive",) if name == "embedding-shift" else ("ar-transformer", "mel-diffusion")
    return [load_zoo_model(family).to(device).eval() for family in families]


@CUDA
@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_gives_the_same_loss_on_cuda_as_on_the_cpu(name, clips):
    clean = torch.from_numpy(np.stack(clips[:2]))[:, :16_000]  # (2, 1 s)
    noise = 0.01 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    values = {}
    for device in ("cpu", "cuda"):
        objective = build_objective(name, mode="whitebox", seed=0)
        models = _objective_models(name, device)
        reference = objective.reference(models, clean.to(device), torch.arange(2))
        values[device] = objective.loss(models, (clean + noise).to(device), reference).detach().cpu().numpy()
    assert np.isfinite(values["cpu"]).all()
    np.testing.assert_allclose(values["cuda"], values["cpu"], rtol=LOSS_RTOL, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family", AUDIO_FAMILIES)
def test_both_attackers_train_on_the_device_from_where_they_should_and_learn_the_album(family, device, clips):
    """T2 starts from the zoo's weights on the device, T1 from the seed's; both train there through
    the benchmark's one loop and end with a lower loss on the album they trained on."""
    from harmonycloak.bench.unlearnability.threats import trained_attacker

    suite = ThreatSpec()  # the benchmark's recipes, shortened: T2 keeps its learning rate (a higher one
    # first raises a pretrained next-frame model's loss) and reads 2 crops a step
    spec = ThreatSpec(scratch_preset="small", device=device, scratch=replace(suite.scratch, steps=12),
                      mimicry=replace(suite.mimicry, steps=24, batch_segments=2, augment_gain=False,
                                      augment_speed=False))
    album = clips[:2]
    references = torch.from_numpy(np.stack(clips[2:4]))
    zoo = load_zoo_model(family).state_dict()
    for threat in ("scratch", "mimicry"):
        before = attacker_model(threat, family, 0, spec)
        assert next(before.parameters()).device.type == device
        starts_at_zoo = all(torch.equal(value.cpu(), zoo[key]) for key, value in before.state_dict().items())
        assert starts_at_zoo == (threat == "mimicry")
        trained, curve = trained_attacker(threat, family, album, spec, seed=0)
        assert len(curve) == spec.recipe(threat).steps and np.isfinite(curve).all()
        assert np.mean(song_losses(trained, album, references=references)) < np.mean(
            song_losses(before, album, references=references))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family", ("ar-transformer", "ar-gru", "mel-diffusion"))
def test_every_generating_family_generates_on_the_device_from_a_cpu_generator(family, device, clips):
    """T2's style measures: the benchmark draws with a CPU generator whatever the model's device."""
    from harmonycloak.bench.generated import GeneratedSpec, generated_frames

    spec = GeneratedSpec(clips=2, generated_s=0.64, window_s=0.32, diffusion_steps=2)
    model = load_zoo_model(family).to(device).eval()
    frames = generated_frames(model, clips[:2], spec, torch.Generator().manual_seed(0))
    assert frames.device.type == device and frames.shape[0] == 2 and frames.shape[1] > 0
    assert torch.isfinite(frames).all()
