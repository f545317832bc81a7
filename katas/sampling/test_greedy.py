"""Tests for katas/sampling/greedy.py (greedy_next_token)."""
import pytest
import torch
from hypothesis import given

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import sampling_inputs

KATA = "sampling.greedy"
greedy_next_token = under_test(KATA)


@given(inputs=sampling_inputs())
def test_shape_and_dtype(inputs, device):
    logits = inputs.logits.to(device)
    check_shape(greedy_next_token(logits), (logits.shape[0],), torch.int64, kata=KATA, what="greedy_next_token output",
                axes="batch", hint="One token id per row: the index of the largest logit, not its value.")


@given(inputs=sampling_inputs())
def test_picks_the_largest_logit_and_the_lowest_index_on_a_tie(inputs, device):
    logits = inputs.logits.to(device)
    is_max = logits == logits.max(dim=-1, keepdim=True).values
    first_max = torch.stack([row.nonzero()[0, 0] for row in is_max])
    check_tensor(greedy_next_token(logits), first_max, kata=KATA, what="greedy_next_token output", axes="batch",
                 hint="Take the maximum over the vocabulary axis (the last one); on ties, the first index.")


def test_does_not_modify_the_logits(device):
    check_inputs_unchanged(greedy_next_token, torch.randn(3, 7, device=device), kata=KATA, what="greedy_next_token")


def some_inputs(device) -> tuple:
    return (randn(3, 7, seed=1, device=device),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(greedy_next_token, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="greedy tokens")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(greedy_next_token, reference(KATA), *some_inputs("cpu"), kata=KATA, what="greedy tokens")

