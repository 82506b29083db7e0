"""The contrastive encoder: InfoNCE by hand, identical vs shuffled pairs, embeddings, gradients."""

import math

import torch
from torch.nn import functional as F

from harmonycloak.models.contrastive import info_nce_with_negatives, symmetric_info_nce, symmetric_info_nce_per_item
from harmonycloak.models.registry import build_model


def test_info_nce_by_hand():
    anchor = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0.0) + math.exp(-1 / tau)))
    assert abs(info_nce_with_negatives(anchor, positive, negatives, tau).item() - expected) < 1e-6


def test_symmetric_info_nce_per_pair_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    tau = 0.5
    logits = [[1 / tau, 0.6 / tau], [0.0, 0.8 / tau]]  # a_i · b_j / τ

    def picks(row, right):
        return -(row[right] - math.log(sum(math.exp(v) for v in row)))

    expected = [0.5 * (picks(logits[i], i) + picks([logits[0][i], logits[1][i]], i)) for i in range(2)]
    torch.testing.assert_close(symmetric_info_nce_per_item(a, b, tau), torch.tensor(expected))
    torch.testing.assert_close(symmetric_info_nce(a, b, tau), torch.tensor(sum(expected) / 2))


def test_identical_pairs_score_lower_than_shuffled_pairs():
    generator = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(16, 8, generator=generator), dim=-1)
    negatives = F.normalize(torch.randn(32, 8, generator=generator), dim=-1)
    shuffled = a.roll(1, dims=0)
    assert symmetric_info_nce(a, a, 0.1) < symmetric_info_nce(a, shuffled, 0.1)
    assert (info_nce_with_negatives(a, a, negatives, 0.1) < info_nce_with_negatives(a, shuffled, negatives, 0.1)).all()


def test_embeddings_have_unit_length_and_a_gradient_in_the_waveform():
    encoder = build_model("contrastive", "tiny").eval()
    waveform = (torch.randn(3, 8000) * 0.1).requires_grad_()
    embedding = encoder.embed(waveform)
    assert embedding.shape == (3, encoder.config.embedding_dim)
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(3))
    encoder.generative_loss(waveform).sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0


def test_per_example_loss_is_deterministic_in_both_modes():
    encoder = build_model("contrastive", "tiny")
    waveform = torch.randn(2, 8000) * 0.1
    encoder.set_negatives(torch.randn(8, 8000) * 0.1)
    train_mode = encoder.train().generative_loss(waveform)
    eval_mode = encoder.eval().generative_loss(waveform)
    assert torch.equal(train_mode, eval_mode)
    torch.testing.assert_close(encoder.generative_loss(waveform[1:]), eval_mode[1:])


def test_training_loss_is_reproducible_from_the_generator():
    encoder = build_model("contrastive", "tiny")
    waveform = torch.randn(4, 8000) * 0.1
    first = encoder.training_loss(waveform, torch.Generator().manual_seed(3))
    second = encoder.training_loss(waveform, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
