"""Tests for katas/training/log_probs.py (next_token_log_probs)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "training.log_probs"
AXES = "batch posn_minus_1"
next_token_log_probs = under_test(KATA)
SHIFT_HINT = "logits[:, p] predicts tokens[:, p + 1]: drop the last position's logits and the first token."


def logits_and_tokens(batch, posn, d_vocab, seed, device):
    return randn(batch, posn, d_vocab, seed=seed, device=device, scale=3.0), random_tokens(batch, posn, d_vocab, seed=seed + 1, device=device)


@given(batch=st.integers(1, 3), posn=st.integers(1, 8), d_vocab=st.integers(2, 20), seed=seeds)
def test_shape_and_dtype(batch, posn, d_vocab, seed, device):
    logits, tokens = logits_and_tokens(batch, posn, d_vocab, seed, device)
    check_shape(next_token_log_probs(logits, tokens), (batch, posn - 1), torch.float32, kata=KATA,
                what="next_token_log_probs output", axes=AXES,
                hint="One log-probability per prediction that has a target: the last position has none.")


@given(batch=st.integers(1, 3), posn=st.integers(2, 8), d_vocab=st.integers(2, 20), seed=seeds)
def test_equals_minus_cross_entropy_of_the_next_token(batch, posn, d_vocab, seed, device):
    logits, tokens = logits_and_tokens(batch, posn, d_vocab, seed, device)
    expected = -F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    check_tensor(next_token_log_probs(logits, tokens), expected, kata=KATA, what="next_token_log_probs output",
                 axes=AXES, atol=1e-5, rtol=1e-5, hint=SHIFT_HINT)


@given(batch=st.integers(1, 3), posn=st.integers(1, 8), d_vocab=st.integers(2, 20), seed=seeds)
def test_matches_reference(batch, posn, d_vocab, seed, device):
    logits, tokens = logits_and_tokens(batch, posn, d_vocab, seed, device)
    check_tensor(next_token_log_probs(logits, tokens), reference(KATA)(logits, tokens), kata=KATA,
                 what="next_token_log_probs output", axes=AXES, hint=SHIFT_HINT)


def test_a_prediction_pairs_with_the_token_one_position_later(device):
    # Position p's logits put all their weight on token p + 10 (mod 20); the sequence is 10, 11, 12, ...:
    # each prediction is right about the next token, and wrong about the token at its own position.
    d_vocab, posn = 20, 6
    tokens = (torch.arange(posn, device=device) + 10)[None]
    logits = torch.full((1, posn, d_vocab), -50.0, device=device)
    logits[0, torch.arange(posn), (tokens[0] + 1) % d_vocab] = 50.0
    check_tensor(next_token_log_probs(logits, tokens), torch.zeros(1, posn - 1, device=device), kata=KATA,
                 what="log-probs of a model that always predicts the next token correctly", axes=AXES, atol=1e-4,
                 hint=SHIFT_HINT)


def test_very_unlikely_tokens_have_finite_log_probs(device):
    # exp(-200) is 0 in float32: log(softmax(...)) gives -inf, log_softmax gives -200.
    logits = torch.tensor([[[200.0, 0.0], [200.0, 0.0], [0.0, 0.0]]], device=device)
    tokens = torch.tensor([[0, 1, 1]], device=device)
    actual = next_token_log_probs(logits, tokens)
    unstable = logits[:, :-1].softmax(dim=-1).log().gather(dim=-1, index=tokens[:, 1:, None])[..., 0]
    hint = diagnose(actual, [(unstable, "log(softmax(x)) underflows to -inf; log_softmax computes the same thing stably.")],
                    SHIFT_HINT)
    check_tensor(actual, torch.tensor([[-200.0, -200.0]], device=device), kata=KATA,
                 what="log-probs of very unlikely tokens", axes=AXES, atol=1e-3, hint=hint)


def test_does_not_modify_its_inputs(device):
    logits, tokens = logits_and_tokens(2, 5, 7, 0, device)
    check_inputs_unchanged(next_token_log_probs, logits, tokens, kata=KATA, what="next_token_log_probs")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_the_logits(dtype, device):
    check_function_in_dtype(next_token_log_probs, reference(KATA), *logits_and_tokens(2, 5, 7, 3, device), dtype=dtype,
                            kata=KATA, what="next-token log-probs", axes=AXES)


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(next_token_log_probs, reference(KATA), *logits_and_tokens(2, 5, 7, 3, "cpu"), kata=KATA,
                           what="next_token_log_probs")
