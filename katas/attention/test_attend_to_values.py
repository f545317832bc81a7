"""Tests for katas/attention/attend_to_values.py (attend_to_values)."""
import pytest
import torch
from hypothesis import given

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import attention_sizes, seeds

KATA = "attention.attend_to_values"
AXES = "batch query_pos n_heads d_head"
attend_to_values = under_test(KATA)


def pattern_and_values(sizes, seed, device):
    shape = (sizes.batch, sizes.n_heads, sizes.query_pos, sizes.key_pos)
    pattern = torch.softmax(randn(*shape, seed=seed, device=device, scale=2.0), dim=-1)
    v = randn(sizes.batch, sizes.key_pos, sizes.n_heads, sizes.d_head, seed=seed + 1, device=device)
    return pattern, v


@given(sizes=attention_sizes(square=False))
def test_shape_and_dtype(sizes, device):
    pattern, v = pattern_and_values(sizes, 0, device)
    shape = (sizes.batch, sizes.query_pos, sizes.n_heads, sizes.d_head)
    check_shape(attend_to_values(pattern, v), shape, torch.float32, kata=KATA, what="attend_to_values output", axes=AXES)


@given(sizes=attention_sizes(square=False), seed=seeds)
def test_matches_reference(sizes, seed, device):
    pattern, v = pattern_and_values(sizes, seed, device)
    check_tensor(attend_to_values(pattern, v), reference(KATA)(pattern, v), kata=KATA, what="attend_to_values output",
                 axes=AXES, hint="Sum over the key position only: z[b, i, h] = sum_j pattern[b, h, i, j] * v[b, j, h].")


def test_a_one_hot_pattern_copies_one_value_per_head(device):
    v = randn(1, 4, 2, 3, seed=2, device=device)
    pattern = torch.zeros(1, 2, 4, 4, device=device)
    pattern[0, 0, :, 0] = 1.0  # head 0: every query reads key 0
    pattern[0, 1] = torch.eye(4, device=device)  # head 1: every query reads itself
    expected = torch.stack([v[0, 0, 0].expand(4, 3), v[0, :, 1]], dim=1)[None]
    check_tensor(attend_to_values(pattern, v), expected, kata=KATA, what="attend_to_values output", axes=AXES,
                 hint="Head h must use only head h's pattern and head h's values; query i uses row i of the pattern.")


def test_does_not_modify_its_inputs(device):
    pattern = torch.softmax(randn(1, 2, 3, 3, seed=1, device=device), dim=-1)
    v = randn(1, 3, 2, 4, seed=2, device=device)
    check_inputs_unchanged(attend_to_values, pattern, v, kata=KATA, what="attend_to_values")


def some_inputs(device) -> tuple:
    return (randn(2, 2, 3, 5, seed=1, device=device).softmax(-1), randn(2, 5, 2, 4, seed=2, device=device),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(attend_to_values, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="z")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(attend_to_values, reference(KATA), *some_inputs("cpu"), kata=KATA, what="z")

