"""Tests for katas/sampling/top_p.py (top_p_filter)."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_new_tensor, check_shape, check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import sampling_inputs

KATA = "sampling.top_p"
top_p_filter = under_test(KATA)
ps = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8, 0.9, 0.95, 1.0]) | st.floats(0.0, 1.0)


@given(inputs=sampling_inputs(), p=ps)
def test_shape_and_dtype(inputs, p, device):
    logits = inputs.logits.to(device)
    check_shape(top_p_filter(logits, p), tuple(logits.shape), torch.float32, kata=KATA, what="top_p_filter output",
                axes="batch d_vocab")


def hf_top_p(logits, tokens, p):
    from transformers import TopPLogitsWarper

    return TopPLogitsWarper(p)(tokens, logits.clone())


@given(inputs=sampling_inputs(), p=ps)
def test_matches_hugging_face_ties_and_boundaries_included(inputs, p, device):
    logits = inputs.logits.to(device)
    check_tensor(top_p_filter(logits, p), hf_top_p(logits, inputs.tokens.to(device), p), kata=KATA,
                 what=f"top_p_filter output with p={p}", axes="batch d_vocab",
                 hint="Ascending sort, softmax, cumsum; remove where cumulative <= 1 - p; always keep the largest.")


def test_probabilities_half_three_tenths_one_fifth_at_p_point_eight_keep_two(device):
    logits = torch.tensor([[math.log(0.5), math.log(0.3), math.log(0.2)]], device=device)
    expected = hf_top_p(logits, torch.zeros(1, 1, dtype=torch.long, device=device), 0.8)
    assert torch.isfinite(expected).sum() == 2, "the oracle itself changed: Hugging Face now keeps a different set"
    check_tensor(top_p_filter(logits, 0.8), expected, kata=KATA, what="top_p_filter([0.5, 0.3, 0.2], p=0.8)",
                 hint="0.2 has cumulative probability 0.2 <= 1 - 0.8: removed; 0.3 and 0.5 stay.")


@pytest.mark.parametrize("p, kept", [(0.75, 3), (0.5, 2), (0.25, 1)])
def test_a_token_exactly_at_the_boundary_is_removed(p, kept, device):
    logits = torch.zeros(1, 4, device=device)  # probabilities exactly 1/4: cumulative 0.25, 0.5, 0.75, 1.0
    survivors = int(torch.isfinite(top_p_filter(logits, p)).sum())
    assert survivors == kept, (
        f"Four tokens of probability 1/4 with p={p}: a token whose cumulative probability is exactly 1 - p is removed, "
        f"so {kept} should survive; {survivors} did.\n{stuck(KATA)}"
    )


def test_p_zero_keeps_only_the_most_likely_token(device):
    logits = torch.tensor([[1.0, 4.0, 2.0]], device=device)
    inf = float("-inf")
    check_tensor(top_p_filter(logits, 0.0), torch.tensor([[inf, 4.0, inf]], device=device), kata=KATA,
                 what="top_p_filter(logits, p=0)", hint="The most likely token is always kept.")


def test_does_not_modify_the_logits(device):
    check_inputs_unchanged(lambda x: top_p_filter(x, 0.5), torch.randn(3, 7, device=device), kata=KATA, what="top_p_filter")


def some_inputs(device) -> tuple:
    return (randn(3, 7, seed=1, device=device), 0.8,)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(top_p_filter, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="top-p filtered logits")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(top_p_filter, reference(KATA), *some_inputs("cpu"), kata=KATA, what="top-p filtered logits")


def test_p_one_keeps_all_in_a_new_tensor(device):
    logits = randn(3, 7, seed=1, device=device)
    out = top_p_filter(logits, 1.0)
    check_new_tensor(out, logits, kata=KATA, what="top_p_filter(logits, 1.0)")
    check_tensor(out, logits.clone(), kata=KATA, what="logits filtered with p=1")
