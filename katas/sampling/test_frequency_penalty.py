"""Tests for katas/sampling/frequency_penalty.py (apply_frequency_penalty)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_new_tensor, check_shape, check_tensor
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import sampling_inputs

KATA = "sampling.frequency_penalty"
apply_frequency_penalty = under_test(KATA)
penalties = st.floats(0.0, 2.0)


@given(inputs=sampling_inputs(), penalty=penalties)
def test_shape_and_dtype(inputs, penalty, device):
    logits = inputs.logits.to(device)
    check_shape(apply_frequency_penalty(logits, inputs.tokens.to(device), penalty), tuple(logits.shape), torch.float32,
                kata=KATA, what="apply_frequency_penalty output", axes="batch d_vocab")


def test_hand_computed_counts_prompt_included(device):
    logits = torch.zeros(2, 5, device=device)
    tokens = torch.tensor([[1, 1, 2, 1], [4, 0, 0, 3]], device=device)  # every token counts, the first included
    expected = -0.5 * torch.tensor([[0.0, 3, 1, 0, 0], [2, 0, 0, 1, 1]], device=device)
    check_tensor(apply_frequency_penalty(logits, tokens, 0.5), expected, kata=KATA, what="apply_frequency_penalty output",
                 axes="batch d_vocab", hint="Subtract penalty * (how many times the token appears in its own row), "
                 "counting every token passed in, the prompt's first one too.")


@given(inputs=sampling_inputs(), penalty=penalties)
def test_matches_reference(inputs, penalty, device):
    logits, tokens = inputs.logits.to(device), inputs.tokens.to(device)
    check_tensor(apply_frequency_penalty(logits, tokens, penalty), reference(KATA)(logits, tokens, penalty), kata=KATA,
                 what="apply_frequency_penalty output", axes="batch d_vocab")


def test_does_not_modify_its_inputs(device):
    check_inputs_unchanged(lambda x, t: apply_frequency_penalty(x, t, 0.7), torch.randn(2, 6, device=device),
                           torch.tensor([[1, 2, 2], [0, 5, 5]], device=device), kata=KATA, what="apply_frequency_penalty")


def some_inputs(device) -> tuple:
    return (randn(3, 7, seed=1, device=device), random_tokens(3, 5, 7, seed=2, device=device), 0.5,)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(apply_frequency_penalty, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="penalised logits")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(apply_frequency_penalty, reference(KATA), *some_inputs("cpu"), kata=KATA, what="penalised logits")


def test_a_penalty_of_zero_still_returns_a_new_tensor(device):
    logits, tokens = randn(3, 7, seed=1, device=device), random_tokens(3, 5, 7, seed=2, device=device)
    out = apply_frequency_penalty(logits, tokens, 0.0)
    check_new_tensor(out, logits, kata=KATA, what="apply_frequency_penalty(logits, tokens, 0.0)")
    check_tensor(out, logits.clone(), kata=KATA, what="logits with frequency penalty 0")
