"""Tests for katas/embeddings/unembedding.py (Unembed)."""
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

KATA = "embeddings.unembedding"
AXES = "batch posn d_vocab"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
def test_shape_and_dtype(cfg, device):
    unembed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    out = unembed(randn(2, 3, cfg.d_model, seed=1, device=device))
    check_shape(out, (2, 3, cfg.d_vocab), torch.float32, kata=KATA, what="Unembed output (the logits)", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    check_matches_reference(KATA, cfg, randn(batch, posn, cfg.d_model, seed=seed + 1, device=device), seed=seed,
                            device=device, what="Unembed output (the logits)", axes=AXES, atol=1e-5, rtol=1e-5,
                            hint="logits = x @ W_U + b_U: no softmax, and do not forget the bias.")


def test_matches_hugging_face_lm_head(device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_matches_hugging_face(KATA, cfg, random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=2, device=device),
                               ours=lambda model: model.unembed, theirs=lambda hf: hf.lm_head, device=device,
                               what="Unembed output", axes=AXES)


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    unembed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_inputs_unchanged(unembed, randn(2, 3, cfg.d_model, seed=1, device=device), kata=KATA, what="Unembed")


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, randn(2, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="Unembed output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device=device), dtype, what="Unembed output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device='cpu'), what="Unembed output", axes=AXES)
