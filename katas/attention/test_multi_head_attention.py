"""Tests for katas/attention/multi_head_attention.py (Attention)."""
import copy

import pytest
import torch
from hypothesis import given

from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import check_matches_hugging_face, check_matches_reference, matching_modules
from harness.testing.properties import check_batch_independent, check_causal, check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

KATA = "attention.multi_head_attention"
AXES = "batch posn d_model"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
@pytest.mark.parametrize("posn", [1, 6])
def test_shape_and_dtype(cfg, posn, device):
    attn, _ = matching_modules(KATA, cfg, seed=0, device=device)
    with torch.no_grad():
        out = attn(randn(2, posn, cfg.d_model, seed=1, device=device))
    check_shape(out, (2, posn, cfg.d_model), torch.float32, kata=KATA, what="Attention output", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    check_matches_reference(KATA, cfg, randn(batch, posn, cfg.d_model, seed=seed + 1, device=device), seed=seed,
                            device=device, what="Attention output", axes=AXES,
                            hint="Check each bias (b_Q, b_K, b_V, b_O), the causal mask, and that W_O sums over heads.")


@pytest.mark.parametrize("name", ["one_head", "many_heads"])
@pytest.mark.parametrize("layer", [0, 1])
def test_matches_hugging_face(name, layer, device):
    cfg = NAMED_CONFIGS[name]
    check_matches_hugging_face(KATA, cfg, random_tokens(3, cfg.n_ctx, cfg.d_vocab, seed=2, device=device),
                               ours=lambda model: model.blocks[layer].attn, theirs=lambda hf: hf.transformer.h[layer].attn,
                               device=device, what=f"Attention output of layer {layer}", axes=AXES)


@pytest.mark.parametrize("position", [0, 3, 6])
def test_is_causal(position, device):
    cfg = NAMED_CONFIGS["many_heads"]
    attn, _ = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 7, cfg.d_model, seed=1, device=device)
    changed = x.clone()
    changed[:, position] += randn(2, cfg.d_model, seed=2, device=device)
    check_causal(attn, x, changed, position, kata=KATA, what="Attention output")


def test_sequences_in_a_batch_are_independent(device):
    cfg = NAMED_CONFIGS["many_heads"]
    attn, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_batch_independent(attn, randn(3, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="Attention output")


def test_does_not_modify_its_input(device):
    cfg = NAMED_CONFIGS["tiny"]
    attn, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_inputs_unchanged(attn, randn(2, 4, cfg.d_model, seed=1, device=device), kata=KATA, what="Attention")


# Known mistakes: one projection's weights used where another's belong (the reference, so swapped).
PROJECTION_MISTAKES = [
    ({"W_V": "W_K", "b_V": "b_K"}, "The values are made with W_K (and b_K): each of queries, keys and values has its own "
     "weights; the values use W_V and b_V."),
    ({"W_V": "W_K"}, "The values are made with W_K: the values use W_V (W_V is never used)."),
    ({"W_K": "W_Q", "b_K": "b_Q"}, "The keys are made with W_Q (and b_Q): the keys use W_K and b_K."),
    ({"W_K": "W_Q"}, "The keys are made with W_Q: the keys use W_K (W_K is never used)."),
    ({"W_Q": "W_K", "b_Q": "b_K"}, "The queries are made with W_K (and b_K): the queries use W_Q and b_Q."),
    ({"W_V": "W_Q", "b_V": "b_Q"}, "The values are made with W_Q (and b_Q): the values use W_V and b_V."),
]


def test_each_projection_uses_its_own_weights(device):
    cfg = NAMED_CONFIGS["many_heads"]
    attn, expected = matching_modules(KATA, cfg, seed=0, device=device)
    x = randn(2, 5, cfg.d_model, seed=1, device=device)
    with torch.no_grad():
        actual = attn(x)

    def swapped(changes: dict) -> torch.Tensor:
        wrong = copy.deepcopy(expected)
        with torch.no_grad():
            for target, source in changes.items():
                getattr(wrong, target).copy_(getattr(expected, source))
            return wrong(x)

    hint = diagnose(actual, [(swapped(changes), why) for changes, why in PROJECTION_MISTAKES],
                    "Check each bias (b_Q, b_K, b_V, b_O), the causal mask, and that W_O sums over heads.")
    with torch.no_grad():
        check_tensor(actual, expected(x), kata=KATA, what="Attention output", axes=AXES, atol=1e-4, rtol=1e-4, hint=hint)


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, randn(2, 5, cfg.d_model, seed=1, device=device), kata=KATA, what="Attention output")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device=device), dtype, what="Attention output", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, randn(2, 5, cfg.d_model, seed=1, device='cpu'), what="Attention output", axes=AXES)
