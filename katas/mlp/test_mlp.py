"""Tests for katas/mlp/mlp.py (MLP)."""
import pytest
import torch
from hypothesis import given

from harness.testing import (
    NAMED_CONFIGS, check_shape, check_tensor, check_unchanged, configs_and_sizes, hf_gpt2, hf_module_io,
    matching_modules, random_tokens, randn, reference_gpt2, seeds,
)

KATA = "mlp.mlp"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
def test_shape_and_dtype(cfg, device):
    mlp, _ = matching_modules(KATA, cfg, seed=0, device=device)
    with torch.no_grad():
        out = mlp(randn(2, 3, cfg.d_model, seed=1, device=device))
    check_shape(out, (2, 3, cfg.d_model), torch.float32, kata=KATA, what="MLP output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    mlp, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    x = randn(batch, posn, cfg.d_model, seed=seed + 1, device=device)
    with torch.no_grad():
        check_tensor(mlp(x), expected(x), kata=KATA, what="MLP output", axes=AXES, atol=1e-4, rtol=1e-4,
                     hint="gelu_new(x @ W_in + b_in) @ W_out + b_out: one activation, two biases.")


@pytest.mark.parametrize("layer", [0, 1])
def test_matches_hugging_face(layer, device):
    cfg = NAMED_CONFIGS["many_heads"]
    mlp, _ = matching_modules(KATA, cfg, seed=0, device=device)
    mlp.load_state_dict(reference_gpt2(cfg, 0, str(device)).blocks[layer].mlp.state_dict())
    hf = hf_gpt2(cfg, 0, str(device))
    x, expected = hf_module_io(hf, hf.transformer.h[layer].mlp, random_tokens(2, 9, cfg.d_vocab, seed=2, device=device))
    with torch.no_grad():
        check_tensor(mlp(x), expected, kata=KATA, what=f"MLP output vs Hugging Face's h[{layer}].mlp", axes=AXES, atol=1e-4, rtol=1e-4)


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    mlp, _ = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 3, cfg.d_model, seed=1, device=device)
    before = x.clone()
    with torch.no_grad():
        mlp(x)
    check_unchanged(before, x, kata=KATA, what="MLP's input")
