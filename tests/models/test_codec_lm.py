"""The codec-token language model: its differentiable loss equals the hard-token NLL."""

import torch
from torch.nn import functional as F

from harmonycloak.models.registry import build_model


def tiny_lm(seed=0):
    return build_model("codec-lm", "tiny", seed=seed).eval()


def test_loss_value_is_the_negative_log_likelihood_of_the_hard_tokens():
    model = tiny_lm()
    waveform = torch.randn(2, 3200) * 0.2
    loss = model.generative_loss(waveform)
    codes = model.codec.tokens(waveform)  # (B, T', K): the codec's own hard codes
    size = model.config.codec.codebook_size
    with torch.no_grad():
        logits = model.logits(F.one_hot(codes[:, :-1], size).float())  # (B, T'−1, K, V)
    by_hand = F.cross_entropy(logits.flatten(0, 2), codes[:, 1:].flatten(), reduction="none")
    torch.testing.assert_close(loss.detach(), by_hand.view(2, -1).mean(dim=1), rtol=1e-4, atol=1e-5)


def test_a_batch_s_tokens_are_the_codec_s_codes_and_train_with_the_loss_of_its_waveforms():
    model = tiny_lm().train()
    waveform = torch.randn(3, 3200, generator=torch.Generator().manual_seed(0)) * 0.2
    codes = model.tokens(waveform)
    assert codes.shape == (3, 3200 // model.token_hop_samples, model.config.codec.codebooks)
    assert torch.equal(codes, model.codec.tokens(waveform))  # the quantiser's own nearest codes
    on_tokens = model.training_loss_on_tokens(codes, torch.Generator())
    torch.testing.assert_close(on_tokens, model.training_loss(waveform, torch.Generator()), rtol=1e-6, atol=0.0)
    on_tokens.backward()  # the parameters learn from codes alone
    assert model.embeddings.grad.abs().sum() > 0


def test_gradient_in_the_waveform_exists_and_is_finite():
    model = tiny_lm()
    waveform = (torch.randn(2, 3200) * 0.2).requires_grad_()
    model.generative_loss(waveform).sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0


def test_the_front_a_cloak_differentiates_is_the_whole_batch_s_computed_in_chunks_again_in_the_backward_pass():
    from harmonycloak.models.codec_lm import FRONT_CHUNK_EXAMPLES

    model = tiny_lm()
    reads = []
    model.codec.encoder.register_forward_hook(lambda _module, inputs, _output: reads.append(inputs[0].shape[0]))
    waveform = (torch.randn(FRONT_CHUNK_EXAMPLES + 2, 3200, generator=torch.Generator().manual_seed(1)) * 0.2)
    waveform.requires_grad_(True)
    whole = model.assignments(model.features(waveform))
    reads.clear()
    chunked = model.untrained_front(waveform)
    assert reads == [FRONT_CHUNK_EXAMPLES, 2]  # one chunk after the other
    read_out = torch.randn(whole.shape, generator=torch.Generator().manual_seed(2))  # a fixed linear read-out
    (whole_gradient,) = torch.autograd.grad((whole * read_out).sum(), waveform)
    (chunked_gradient,) = torch.autograd.grad((chunked * read_out).sum(), waveform)
    assert reads[:2] == [FRONT_CHUNK_EXAMPLES, 2] and sorted(reads[2:]) == [2, FRONT_CHUNK_EXAMPLES]  # recomputed
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(chunked_gradient, whole_gradient, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # nothing to differentiate: the batch at once, nothing recomputed
        reads.clear()
        model.untrained_front(waveform)
    assert reads == [FRONT_CHUNK_EXAMPLES + 2]


def test_loss_is_deterministic_and_the_codec_frozen():
    model = tiny_lm()
    model.train()
    assert not model.codec.training
    assert not any(p.requires_grad for p in model.codec.parameters())
    waveform = torch.randn(2, 3200) * 0.2
    assert torch.equal(model.generative_loss(waveform), model.generative_loss(waveform))


def test_generation_continues_the_prompt_with_the_requested_frames():
    model = tiny_lm()
    prompt = torch.randn(2, 1600) * 0.2
    codes = model.generate_tokens(model.codec.tokens(prompt), 7, torch.Generator().manual_seed(0), top_k=4)
    assert codes.shape == (2, 5 + 7, model.config.codec.codebooks)
    waveform = model.generate(prompt, 6, torch.Generator().manual_seed(0))
    assert waveform.shape == (2, 6 * 320) and waveform.abs().max() <= 1.0
    again = model.generate(prompt, 6, torch.Generator().manual_seed(0))
    assert torch.equal(waveform, again)
