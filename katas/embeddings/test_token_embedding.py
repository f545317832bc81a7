"""Tests for katas/embeddings/token_embedding.py (Embed)."""
import pytest
import torch
from hypothesis import given

from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens, tokens_with_extremes
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import hf_gpt2, matching_modules, module_like, reference_gpt2
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

KATA = "embeddings.token_embedding"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
def test_shape_and_dtype(cfg, device):
    embed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    out = embed(random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device))
    check_shape(out, (2, cfg.n_ctx, cfg.d_model), torch.float32, kata=KATA, what="Embed output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    embed, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    tokens = random_tokens(batch, posn, cfg.d_vocab, seed=seed + 1, device=device)
    check_tensor(embed(tokens), expected(tokens), kata=KATA, what="Embed output", axes=AXES,
                 hint="out[b, p] should be row tokens[b, p] of W_E, unscaled.")


def test_matches_hugging_face_wte(device):
    cfg = NAMED_CONFIGS["many_heads"]
    embed = module_like(KATA, cfg, reference_gpt2(cfg, 0, str(device)).embed, device=device)
    tokens = random_tokens(3, cfg.n_ctx, cfg.d_vocab, seed=2, device=device)
    with torch.no_grad():
        expected = hf_gpt2(cfg, 0, str(device)).transformer.wte(tokens)
    check_tensor(embed(tokens), expected, kata=KATA, what="Embed output vs Hugging Face's wte", atol=1e-4, axes=AXES)


def test_gradients_reach_W_E(device):
    cfg = NAMED_CONFIGS["tiny"]
    embed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    tokens = torch.tensor([[1, 3, 3]], device=device)
    embed(tokens).sum().backward()
    assert embed.W_E.grad is not None, "No gradient reached W_E: the embedding must stay differentiable (no .detach(), no .data)."
    used = torch.zeros(cfg.d_vocab, dtype=torch.bool)
    used[[1, 3]] = True
    grad_rows_touched = embed.W_E.grad.abs().sum(dim=-1).cpu() > 0
    assert torch.equal(grad_rows_touched, used), "Only the rows of the tokens used (1 and 3) should get gradient."


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), kata=KATA, what="Embed output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), dtype,
                          what="Embed output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device='cpu'), what="Embed output", axes=AXES)
