"""Tests for katas/attention/attention_pattern.py (attention_pattern)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import attention_sizes, seeds

KATA = "attention.attention_pattern"
AXES = "batch n_heads query_pos key_pos"
attention_pattern = under_test(KATA)
causal_mask = reference("attention.causal_mask")


def masked_scores(sizes, seed, device, scale=1.0):
    shape = (sizes.batch, sizes.n_heads, sizes.query_pos, sizes.key_pos)
    return causal_mask(randn(*shape, seed=seed, device=device, scale=scale))


@given(sizes=attention_sizes())
def test_shape_and_dtype(sizes, device):
    scores = masked_scores(sizes, 0, device)
    check_shape(attention_pattern(scores), tuple(scores.shape), torch.float32, kata=KATA, what="attention_pattern output", axes=AXES)


@given(sizes=attention_sizes(), seed=seeds, scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_matches_reference(sizes, seed, scale, device):
    scores = masked_scores(sizes, seed, device, scale)
    check_tensor(attention_pattern(scores), reference(KATA)(scores), kata=KATA, what="attention_pattern output",
                 axes=AXES, hint="A softmax over the key axis (the last one).")


def test_each_query_row_sums_to_one_with_no_weight_on_the_future(device):
    scores = randn(2, 3, 6, 6, seed=5, device=device, scale=3.0)
    masked = causal_mask(scores)
    pattern = attention_pattern(masked)
    row_sums = pattern.sum(dim=-1)
    check_tensor(row_sums, torch.ones_like(row_sums), kata=KATA, what="the sum of each query's row of the pattern",
                 axes="batch n_heads query_pos", hint="Each query's weights over the keys must sum to 1: which axis is that?")
    future = torch.ones(6, 6, dtype=torch.bool, device=device).triu(diagonal=1)
    check_tensor(pattern[..., future], torch.zeros_like(pattern[..., future]), kata=KATA,
                 what="the pattern's weights on future keys", atol=0, rtol=0)


def test_stays_finite_for_large_scores_and_fully_masked_rows(device):
    scores = randn(1, 2, 4, 4, seed=7, device=device, scale=1.0)
    scores[0, 0] = 100.0 + scores[0, 0]  # exp(100) overflows float32
    scores[0, 1, 2] = torch.finfo(torch.float32).min  # a row with every key masked
    pattern = attention_pattern(scores)
    overflow = "A hand-written softmax must subtract each row's maximum before exp, or exp overflows (inf/inf = NaN)."
    if isinstance(pattern, torch.Tensor) and not pattern.isfinite().all():
        hint = overflow
    else:
        hint = diagnose(pattern, [(torch.softmax(scores, dim=axis), f"That is a softmax over axis {axis} "
                                   f"({AXES.split()[axis]}): each query's weights are spread over the keys, the last axis.")
                                  for axis in (0, 1, 2)],
                        "attention_pattern should be torch.softmax(scores, dim=-1), finite even for huge scores and "
                        "for rows where every score is finfo.min.")
    check_tensor(pattern, torch.softmax(scores, dim=-1), kata=KATA, what="attention_pattern output", axes=AXES, hint=hint)


def test_does_not_modify_its_input(device):
    check_inputs_unchanged(attention_pattern, randn(1, 2, 3, 3, seed=1, device=device), kata=KATA, what="attention_pattern")


def some_inputs(device) -> tuple:
    return (randn(2, 2, 4, 4, seed=1, device=device),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(attention_pattern, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="attention pattern")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(attention_pattern, reference(KATA), *some_inputs("cpu"), kata=KATA, what="attention pattern")

