"""Tests for katas/block/transformer_block.py (TransformerBlock)."""
import pytest
import torch
from hypothesis import given

from harness.testing import (
    NAMED_CONFIGS, check_batch_independent, check_causal, check_shape, check_tensor, check_unchanged,
    configs_and_sizes, hf_gpt2, hf_module_io, matching_modules, random_tokens, randn, reference_gpt2, seeds,
)

KATA = "block.transformer_block"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
def test_shape_and_dtype(cfg, device):
    block, _ = matching_modules(KATA, cfg, seed=0, device=device)
    with torch.no_grad():
        out = block(randn(2, 4, cfg.d_model, seed=1, device=device))
    check_shape(out, (2, 4, cfg.d_model), torch.float32, kata=KATA, what="TransformerBlock output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    block, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    x = randn(batch, posn, cfg.d_model, seed=seed + 1, device=device)
    with torch.no_grad():
        check_tensor(block(x), expected(x), kata=KATA, what="TransformerBlock output", axes=AXES, atol=1e-4, rtol=1e-4,
                     hint="Pre-norm: x + attn(ln1(x)), then + mlp(ln2(...)); the residual stream itself is never normalised.")


@pytest.mark.parametrize("name", ["one_head", "many_heads"])
@pytest.mark.parametrize("layer", [0, 1])
def test_matches_hugging_face(name, layer, device):
    cfg = NAMED_CONFIGS[name]
    block, _ = matching_modules(KATA, cfg, seed=0, device=device)
    block.load_state_dict(reference_gpt2(cfg, 0, str(device)).blocks[layer].state_dict())
    hf = hf_gpt2(cfg, 0, str(device))
    x, expected = hf_module_io(hf, hf.transformer.h[layer], random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=2, device=device))
    with torch.no_grad():
        check_tensor(block(x), expected, kata=KATA, what=f"TransformerBlock output vs Hugging Face's h[{layer}]",
                     axes=AXES, atol=1e-4, rtol=1e-4)


def test_is_causal(device):
    cfg = NAMED_CONFIGS["many_heads"]
    block, _ = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 6, cfg.d_model, seed=1, device=device)
    changed = x.clone()
    changed[:, 3] += 1.0
    check_causal(block, x, changed, 3, kata=KATA, what="TransformerBlock output")


def test_sequences_in_a_batch_are_independent(device):
    cfg = NAMED_CONFIGS["many_heads"]
    block, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_batch_independent(block, randn(3, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="TransformerBlock output")


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    block, _ = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 3, cfg.d_model, seed=1, device=device)
    before = x.clone()
    with torch.no_grad():
        block(x)
    check_unchanged(before, x, kata=KATA, what="TransformerBlock's input (the residual stream)")
