"""Tests for katas/layernorm/layer_norm.py (LayerNorm)."""
import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import check_matches_hugging_face, check_matches_reference, matching_modules
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

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
    x = randn(batch, posn, cfg.d_model, seed=seed + 1, device=device, scale=scale) + 3.0
    check_matches_reference(KATA, cfg, x, seed=seed, device=device, what="LayerNorm output", axes=AXES,
                            hint="Mean and biased variance over the last axis only, eps inside the sqrt, then * w + b.")


@pytest.mark.parametrize("eps", [0.5, 10.0])
def test_large_eps_goes_inside_the_square_root(eps, device):
    cfg = dataclasses.replace(NAMED_CONFIGS["many_heads"], layer_norm_eps=eps)
    ln, _ = matching_modules(KATA, cfg, seed=3, device=device)
    x = randn(2, 4, cfg.d_model, seed=4, device=device, scale=0.7)
    w, b = ln.w.detach(), ln.b.detach()
    expected = torch.nn.functional.layer_norm(x, (cfg.d_model,), w, b, eps)
    centred = x - x.mean(dim=-1, keepdim=True)
    biased, unbiased = x.var(dim=-1, keepdim=True, unbiased=False), x.var(dim=-1, keepdim=True)
    with torch.no_grad():
        actual = ln(x)
    hint = diagnose(actual, [
        (centred / (biased.sqrt() + eps) * w + b, "With a large eps the difference shows: divide by sqrt(var + eps), not by std + eps."),
        (centred / (unbiased + eps).sqrt() * w + b,
         "That is the unbiased variance (dividing by d_model - 1, torch.var's default): use unbiased=False."),
        (centred / (unbiased.sqrt() + eps) * w + b,
         "Two mistakes: the unbiased variance (use unbiased=False) and eps outside the square root (sqrt(var + eps))."),
        (centred / biased.sqrt() * w + b, "eps is missing: divide by sqrt(var + eps)."),
    ], "Mean and biased variance over the last axis only, eps inside the sqrt, then * w + b.")
    check_tensor(actual, expected, kata=KATA, what=f"LayerNorm output with eps={eps}", axes=AXES, hint=hint)


def test_matches_hugging_face_ln_1(device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_matches_hugging_face(KATA, cfg, random_tokens(2, 7, cfg.d_vocab, seed=2, device=device),
                               ours=lambda model: model.blocks[1].ln1, theirs=lambda hf: hf.transformer.h[1].ln_1,
                               device=device, what="LayerNorm output", axes=AXES)


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    ln, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_inputs_unchanged(ln, randn(2, 3, cfg.d_model, seed=1, device=device), kata=KATA, what="LayerNorm")


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, randn(2, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="LayerNorm output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device=device), dtype, what="LayerNorm output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device='cpu'), what="LayerNorm output", axes=AXES)
