"""Tests for katas/embeddings/positional_embedding.py (PosEmbed)."""
import pytest
import torch
from hypothesis import given

from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens, tokens_with_extremes
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import hf_gpt2, matching_modules, module_like, reference_gpt2
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

KATA = "embeddings.positional_embedding"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
@pytest.mark.parametrize("posn", [1, 5])
def test_shape_and_dtype(cfg, posn, device):
    pos_embed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    out = pos_embed(random_tokens(3, posn, cfg.d_vocab, seed=1, device=device))
    check_shape(out, (3, posn, cfg.d_model), torch.float32, kata=KATA, what="PosEmbed output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    pos_embed, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    tokens = random_tokens(batch, posn, cfg.d_vocab, seed=seed + 1, device=device)
    check_tensor(pos_embed(tokens), expected(tokens), kata=KATA, what="PosEmbed output", axes=AXES,
                 hint="out[b, p] should be W_pos[p]: positions count from 0, and token ids play no part.")


def test_ignores_token_ids(device):
    cfg = NAMED_CONFIGS["many_heads"]
    pos_embed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    some = random_tokens(2, 6, cfg.d_vocab, seed=1, device=device)
    other = (some + 1) % cfg.d_vocab
    check_tensor(pos_embed(other), pos_embed(some), kata=KATA, what="PosEmbed output for other token ids",
                 hint="The positional embedding depends on positions only, never on which tokens are there.")


def test_matches_hugging_face_wpe(device):
    cfg = NAMED_CONFIGS["many_heads"]
    pos_embed = module_like(KATA, cfg, reference_gpt2(cfg, 0, str(device)).pos_embed, device=device)
    tokens = random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=2, device=device)
    with torch.no_grad():
        expected = hf_gpt2(cfg, 0, str(device)).transformer.wpe(torch.arange(cfg.n_ctx, device=device)).expand(2, -1, -1)
    check_tensor(pos_embed(tokens), expected, kata=KATA, what="PosEmbed output vs Hugging Face's wpe", atol=1e-4, axes=AXES)


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), kata=KATA, what="PosEmbed output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), dtype,
                          what="PosEmbed output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device='cpu'), what="PosEmbed output", axes=AXES)
