"""Tests for katas/attention/attention_scores.py (attention_scores)."""
import math

import pytest
import torch
from hypothesis import given

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import attention_sizes, seeds

KATA = "attention.attention_scores"
AXES = "batch n_heads query_pos key_pos"
attention_scores = under_test(KATA)


def queries_and_keys(sizes, seed, device):
    q = randn(sizes.batch, sizes.query_pos, sizes.n_heads, sizes.d_head, seed=seed, device=device)
    k = randn(sizes.batch, sizes.key_pos, sizes.n_heads, sizes.d_head, seed=seed + 1, device=device)
    return q, k


@given(sizes=attention_sizes(square=False))
def test_shape_and_dtype(sizes, device):
    q, k = queries_and_keys(sizes, 0, device)
    shape = (sizes.batch, sizes.n_heads, sizes.query_pos, sizes.key_pos)
    check_shape(attention_scores(q, k), shape, torch.float32, kata=KATA, what="attention_scores output", axes=AXES,
                hint="Queries index the rows, keys the columns, and the head axis comes before both.")


@given(sizes=attention_sizes(square=False), seed=seeds)
def test_matches_reference(sizes, seed, device):
    q, k = queries_and_keys(sizes, seed, device)
    check_tensor(attention_scores(q, k), reference(KATA)(q, k), kata=KATA, what="attention_scores output", axes=AXES,
                 atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_heads, d_head", [(1, 4), (3, 16), (4, 64)])
def test_is_per_head_dot_product_over_sqrt_d_head(n_heads, d_head, device):
    q = randn(2, 5, n_heads, d_head, seed=1, device=device)
    k = randn(2, 6, n_heads, d_head, seed=2, device=device)
    per_head = torch.stack([q[:, :, h] @ k[:, :, h].transpose(-1, -2) for h in range(n_heads)], dim=1)
    actual = attention_scores(q, k)
    hint = diagnose(actual, [
        (per_head, "The scores are not scaled: divide by sqrt(d_head), or the softmax saturates as d_head grows."),
        (per_head / d_head, "That divides by d_head itself: divide by its square root, sqrt(d_head)."),
        (per_head / math.sqrt(n_heads * d_head), "That divides by sqrt(d_model): divide by sqrt(d_head), the size of one head."),
    ], "Each head's score is the dot product of a query and a key over that head's d_head features, divided by sqrt(d_head).")
    check_tensor(actual, per_head / math.sqrt(d_head), kata=KATA, what="attention_scores output", axes=AXES, hint=hint)


def test_does_not_modify_its_inputs(device):
    q, k = randn(1, 3, 2, 4, seed=1, device=device), randn(1, 3, 2, 4, seed=2, device=device)
    check_inputs_unchanged(attention_scores, q, k, kata=KATA, what="attention_scores")


def some_inputs(device) -> tuple:
    return (randn(2, 3, 2, 4, seed=1, device=device), randn(2, 5, 2, 4, seed=2, device=device),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(attention_scores, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="attention scores")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(attention_scores, reference(KATA), *some_inputs("cpu"), kata=KATA, what="attention scores")

