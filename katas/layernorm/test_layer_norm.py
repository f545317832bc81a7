"""Tests for katas/layernorm/layer_norm.py (LayerNorm)."""
import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import (
    NAMED_CONFIGS, check_shape, check_tensor, check_unchanged, configs_and_sizes, hf_gpt2, hf_module_io,
    matching_modules, random_tokens, randn, reference_gpt2, seeds,
)

KATA = "layernorm.layer_norm"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype(cfg, dtype, device):
    ln, _ = matching_modules(KATA, cfg, seed=0, device=device)
    out = ln.to(dtype)(randn(2, 3, cfg.d_model, seed=1, device=device).to(dtype))
    check_shape(out, (2, 3, cfg.d_model), dtype, kata=KATA, what="LayerNorm output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds, scale=st.sampled_from([0.01, 1.0, 100.0]))
def test_matches_reference(config_and_sizes, seed, scale, device):
    cfg, batch, posn = config_and_sizes
    ln, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    x = randn(batch, posn, cfg.d_model, seed=seed + 1, device=device, scale=scale) + 3.0
    with torch.no_grad():
        check_tensor(ln(x), expected(x), kata=KATA, what="LayerNorm output", axes=AXES, atol=1e-4, rtol=1e-4,
                     hint="Mean and biased variance over the last axis only, eps inside the sqrt, then * w + b.")


@pytest.mark.parametrize("eps", [0.5, 10.0])
def test_large_eps_goes_inside_the_square_root(eps, device):
    cfg = dataclasses.replace(NAMED_CONFIGS["many_heads"], layer_norm_eps=eps)
    ln, _ = matching_modules(KATA, cfg, seed=3, device=device)
    x = randn(2, 4, cfg.d_model, seed=4, device=device, scale=0.7)
    expected = torch.nn.functional.layer_norm(x, (cfg.d_model,), ln.w.detach(), ln.b.detach(), eps)
    with torch.no_grad():
        check_tensor(ln(x), expected, kata=KATA, what=f"LayerNorm output with eps={eps}", axes=AXES,
                     hint="With a large eps the difference shows: divide by sqrt(var + eps), not by std + eps.")


def test_matches_hugging_face_ln_1(device):
    cfg = NAMED_CONFIGS["many_heads"]
    ln, _ = matching_modules(KATA, cfg, seed=0, device=device)
    ln.load_state_dict(reference_gpt2(cfg, 0, str(device)).blocks[1].ln1.state_dict())
    hf = hf_gpt2(cfg, 0, str(device))
    x, expected = hf_module_io(hf, hf.transformer.h[1].ln_1, random_tokens(2, 7, cfg.d_vocab, seed=2, device=device))
    with torch.no_grad():
        check_tensor(ln(x), expected, kata=KATA, what="LayerNorm output vs Hugging Face's ln_1", atol=1e-4, axes=AXES)


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    ln, _ = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 3, cfg.d_model, seed=1, device=device)
    before = x.clone()
    with torch.no_grad():
        ln(x)
    check_unchanged(before, x, kata=KATA, what="LayerNorm's input")
