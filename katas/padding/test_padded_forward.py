"""Tests for katas/padding/padded_forward.py (padded_forward), against the model on each row alone and Hugging Face."""
import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.oracles import hf_gpt2, reference_gpt2
from harness.testing.padding import hf_padded_logits, left_padded, real_part
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "padding.padded_forward"
padded_forward = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=23, n_ctx=20)
PAD = CFG.d_vocab - 1
AXES = "batch posn d_vocab"
HINT = ("A padded row's real tokens must get the logits they get alone: positions from parts.positions_from_mask, "
        "and parts.apply_padding_mask in every block's attention.")


def check_real_positions(logits, expected, mask, *, what: str, atol=1e-4, hint=HINT):
    """The logits at real positions equal `expected` there; every logit is finite."""
    __tracebackhide__ = True
    check_tensor(logits[mask == 1], expected[mask == 1], kata=KATA, atol=atol, rtol=atol,
                 axes="real_position d_vocab", what=what, hint=hint)
    assert logits.isfinite().all(), (
        "Some logits at padding positions are NaN or infinite. A padding position's query has no key to attend to: "
        "its scores must be filled with a finite number (apply_padding_mask does it), and nothing may divide by zero.")


@given(lengths=st.lists(st.integers(1, 8), min_size=1, max_size=4), seed=st.integers(0, 2), token_seed=seeds,
       pad=st.integers(0, CFG.d_vocab - 1))
def test_each_row_gets_the_logits_of_its_real_tokens_alone(lengths, seed, token_seed, pad, device):
    model = reference_gpt2(CFG, seed, str(device))
    tokens, mask = left_padded(lengths, CFG.d_vocab, seed=token_seed, pad=pad, device=device)
    with torch.no_grad():
        logits = padded_forward(model, tokens, mask)
        alone = torch.zeros(len(lengths), max(lengths), CFG.d_vocab, device=device)
        for row, length in enumerate(lengths):
            alone[row, max(lengths) - length :] = model(real_part(tokens, mask, row))[0]
    assert tuple(logits.shape) == (len(lengths), max(lengths), CFG.d_vocab), (
        f"padded_forward's logits should be (batch, posn, d_vocab) = {(len(lengths), max(lengths), CFG.d_vocab)}, "
        f"got {tuple(logits.shape)}")
    check_real_positions(logits, alone, mask, what=f"logits of rows of lengths {lengths} padded with {pad}, vs each row alone")


@pytest.mark.parametrize("lengths", [[3, 1, 5], [1, 1], [4, 4], [6, 2, 1, 3], [1, 7]], ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_logits_equal_hugging_face_with_its_attention_mask(lengths, seed, device):
    tokens, mask = left_padded(lengths, CFG.d_vocab, seed=seed + 30, pad=PAD, device=device)
    with torch.no_grad():
        logits = padded_forward(reference_gpt2(CFG, seed, str(device)), tokens, mask)
    check_real_positions(logits, hf_padded_logits(hf_gpt2(CFG, seed, str(device)), tokens, mask), mask,
                         what=f"logits of prompts of lengths {lengths} vs Hugging Face's model(tokens, attention_mask=...)")


def test_without_padding_it_is_the_model(device):
    model = reference_gpt2(CFG, 0, str(device))
    tokens, mask = left_padded([6, 6], CFG.d_vocab, seed=3, pad=PAD, device=device)
    with torch.no_grad():
        check_tensor(padded_forward(model, tokens, mask), model(tokens), kata=KATA, atol=1e-5, rtol=1e-5, axes=AXES,
                     what="logits with a mask of ones vs the model's own forward",
                     hint="With no padding this is GPT2's forward: embed + pos_embed, the blocks, ln_final, unembed.")


def test_a_row_of_padding_only_stays_finite_and_leaves_the_others_alone(device):
    model = reference_gpt2(CFG, 0, str(device))
    tokens, mask = left_padded([4, 4], CFG.d_vocab, seed=4, pad=PAD, device=device)
    mask[1] = 0
    with torch.no_grad():
        logits = padded_forward(model, tokens, mask)
        expected = model(tokens[:1])
    check_real_positions(logits[:1], expected, mask[:1], what="logits of a full row batched with a row of padding only")


def test_in_float64(device):
    model = copy.deepcopy(reference_gpt2(CFG, 2, str(device))).double()
    tokens, mask = left_padded([5, 2, 1], CFG.d_vocab, seed=5, pad=PAD, device=device)
    with torch.no_grad():
        logits = padded_forward(model, tokens, mask)
        expected = reference(KATA)(model, tokens, mask)
    assert logits.dtype == torch.float64, f"a float64 model gives float64 logits, got {logits.dtype}"
    check_real_positions(logits, expected, mask, atol=1e-9, what="logits of a float64 model",
                         hint="Create nothing in float32: every tensor follows the model's weights.")


def test_leaves_its_inputs_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    tokens, mask = left_padded([3, 1], CFG.d_vocab, seed=6, pad=PAD, device=device)
    check_inputs_unchanged(lambda t, m: padded_forward(model, t, m), tokens, mask, kata=KATA, what="padded_forward")
