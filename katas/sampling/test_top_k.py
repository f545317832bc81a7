"""Tests for katas/sampling/top_k.py (top_k_filter)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_new_tensor, check_shape, check_tensor, diagnose
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import sampling_inputs

KATA = "sampling.top_k"
top_k_filter = under_test(KATA)


@given(inputs=sampling_inputs(), k=st.integers(1, 40))
def test_shape_and_dtype(inputs, k, device):
    logits = inputs.logits.to(device)
    check_shape(top_k_filter(logits, k), tuple(logits.shape), torch.float32, kata=KATA, what="top_k_filter output",
                axes="batch d_vocab")


@given(inputs=sampling_inputs(), k=st.integers(1, 40))
def test_matches_hugging_face_ties_included(inputs, k, device):
    from transformers import TopKLogitsWarper

    logits = inputs.logits.to(device)
    expected = TopKLogitsWarper(k)(inputs.tokens.to(device), logits.clone())
    check_tensor(top_k_filter(logits, k), expected, kata=KATA, what=f"top_k_filter output with k={k}", axes="batch d_vocab",
                 hint="Keep every logit >= the k-th largest (ties included), set the rest to -inf; k >= d_vocab keeps all.")


def test_keeps_every_token_tied_with_the_kth(device):
    logits = torch.tensor([[5.0, 3.0, 3.0, 3.0, 1.0]], device=device)
    inf = float("-inf")
    actual = top_k_filter(logits, 2)
    hint = diagnose(actual, [(torch.tensor([[5.0, 3.0, inf, inf, inf]], device=device),
                              "Exactly k kept (torch.topk's indices): the three tokens tied at the 2nd largest all stay, as "
                              "in Hugging Face. Keep every logit >= the k-th largest value.")],
                    "Keep every logit >= the k-th largest value (ties included); set the others to -inf.")
    check_tensor(actual, torch.tensor([[5.0, 3.0, 3.0, 3.0, inf]], device=device), kata=KATA,
                 what="top_k_filter([[5, 3, 3, 3, 1]], k=2)", hint=hint)


def test_k_must_be_positive(device):
    try:
        top_k_filter(torch.randn(1, 4, device=device), 0)
    except ValueError:
        return
    pytest.fail(f"top_k_filter(logits, 0) should raise ValueError.\n{stuck(KATA)}", pytrace=False)


def test_does_not_modify_the_logits(device):
    check_inputs_unchanged(lambda x: top_k_filter(x, 2), torch.randn(3, 7, device=device), kata=KATA, what="top_k_filter")


def some_inputs(device) -> tuple:
    return (randn(3, 7, seed=1, device=device), 3,)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(top_k_filter, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="top-k filtered logits")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(top_k_filter, reference(KATA), *some_inputs("cpu"), kata=KATA, what="top-k filtered logits")


@pytest.mark.parametrize("k", [7, 50])
def test_k_of_the_whole_vocabulary_or_more_keeps_all_in_a_new_tensor(k, device):
    logits = randn(3, 7, seed=1, device=device)
    out = top_k_filter(logits, k)
    check_new_tensor(out, logits, kata=KATA, what=f"top_k_filter(logits, {k}) with 7 logits per row")
    check_tensor(out, logits.clone(), kata=KATA, what=f"logits filtered with k={k} >= d_vocab")
