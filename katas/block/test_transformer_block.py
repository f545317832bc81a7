"""Tests for katas/block/transformer_block.py (TransformerBlock)."""
import pytest
import torch
from hypothesis import given

from harness.testing.asserts import check_shape
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import check_matches_hugging_face, check_matches_reference, matching_modules
from harness.testing.properties import check_batch_independent, check_causal, check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

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
    check_matches_reference(KATA, cfg, randn(batch, posn, cfg.d_model, seed=seed + 1, device=device), seed=seed,
                            device=device, what="TransformerBlock output", axes=AXES,
                            hint="Pre-norm: x + attn(ln1(x)), then + mlp(ln2(...)); the residual stream itself is never normalised.")


@pytest.mark.parametrize("name", ["one_head", "many_heads"])
@pytest.mark.parametrize("layer", [0, 1])
def test_matches_hugging_face(name, layer, device):
    cfg = NAMED_CONFIGS[name]
    check_matches_hugging_face(KATA, cfg, random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=2, device=device),
                               ours=lambda model: model.blocks[layer], theirs=lambda hf: hf.transformer.h[layer],
                               device=device, what=f"TransformerBlock output of layer {layer}", axes=AXES)


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
    check_inputs_unchanged(block, randn(2, 3, cfg.d_model, seed=1, device=device), kata=KATA, what="TransformerBlock")


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, randn(2, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="TransformerBlock output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device=device), dtype, what="TransformerBlock output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device='cpu'), what="TransformerBlock output", axes=AXES)
