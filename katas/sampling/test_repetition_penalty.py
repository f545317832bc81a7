"""Tests for katas/sampling/repetition_penalty.py (apply_repetition_penalty)."""
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import check_inputs_unchanged, check_shape, check_tensor, sampling_inputs, under_test

KATA = "sampling.repetition_penalty"
apply_repetition_penalty = under_test(KATA)
penalties = st.floats(0.5, 3.0)


@given(inputs=sampling_inputs(), penalty=penalties)
def test_shape_and_dtype(inputs, penalty, device):
    logits = inputs.logits.to(device)
    check_shape(apply_repetition_penalty(logits, inputs.tokens.to(device), penalty), tuple(logits.shape), torch.float32,
                kata=KATA, what="apply_repetition_penalty output", axes="batch d_vocab")


@given(inputs=sampling_inputs(), penalty=penalties)
def test_matches_hugging_face(inputs, penalty, device):
    from transformers import RepetitionPenaltyLogitsProcessor

    logits, tokens = inputs.logits.to(device), inputs.tokens.to(device)
    expected = RepetitionPenaltyLogitsProcessor(penalty)(tokens, logits.clone())
    check_tensor(apply_repetition_penalty(logits, tokens, penalty), expected, kata=KATA,
                 what="apply_repetition_penalty output", axes="batch d_vocab",
                 hint="Seen tokens only, once each: positive logits / penalty, negative logits * penalty; rows are separate.")


def test_does_not_modify_its_inputs(device):
    check_inputs_unchanged(lambda x, t: apply_repetition_penalty(x, t, 1.5), torch.randn(2, 6, device=device),
                           torch.tensor([[1, 2, 2], [0, 5, 5]], device=device), kata=KATA, what="apply_repetition_penalty")
