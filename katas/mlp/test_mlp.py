"""Tests for katas/mlp/mlp.py (MLP)."""
import pytest
import torch
from hypothesis import given

from harness.testing.asserts import check_shape
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import check_matches_hugging_face, check_matches_reference, matching_modules
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

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
    check_matches_reference(KATA, cfg, randn(batch, posn, cfg.d_model, seed=seed + 1, device=device), seed=seed,
                            device=device, what="MLP output", axes=AXES,
                            hint="gelu_new(x @ W_in + b_in) @ W_out + b_out: one activation, two biases.")


@pytest.mark.parametrize("layer", [0, 1])
def test_matches_hugging_face(layer, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_matches_hugging_face(KATA, cfg, random_tokens(2, 9, cfg.d_vocab, seed=2, device=device),
                               ours=lambda model: model.blocks[layer].mlp, theirs=lambda hf: hf.transformer.h[layer].mlp,
                               device=device, what=f"MLP output of layer {layer}", axes=AXES)


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    mlp, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_inputs_unchanged(mlp, randn(2, 3, cfg.d_model, seed=1, device=device), kata=KATA, what="MLP")


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, randn(2, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="MLP output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device=device), dtype, what="MLP output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device='cpu'), what="MLP output", axes=AXES)
