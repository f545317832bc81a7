"""Tests for katas/training/cross_entropy_loss.py (cross_entropy_loss), against torch and Hugging Face."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn, random_tokens
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.oracles import hf_gpt2, reference_gpt2
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, seeds

KATA = "training.cross_entropy_loss"
cross_entropy_loss = under_test(KATA)
HINT = "The mean of -log P(next token) over every prediction of every sequence."


def logits_and_tokens(batch, posn, d_vocab, seed, device):
    return randn(batch, posn, d_vocab, seed=seed, device=device, scale=3.0), random_tokens(batch, posn, d_vocab, seed=seed + 1, device=device)


def test_is_a_float_scalar(device):
    logits, tokens = logits_and_tokens(2, 5, 7, 0, device)
    check_shape(cross_entropy_loss(logits, tokens), (), torch.float32, kata=KATA, what="the loss",
                hint="One number for the whole batch: average, do not keep the batch or position axes.")


@given(batch=st.integers(1, 3), posn=st.integers(2, 8), d_vocab=st.integers(2, 20), seed=seeds)
def test_equals_torch_cross_entropy_on_the_shifted_tokens(batch, posn, d_vocab, seed, device):
    logits, tokens = logits_and_tokens(batch, posn, d_vocab, seed, device)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, d_vocab), tokens[:, 1:].reshape(-1))
    check_tensor(cross_entropy_loss(logits, tokens), expected, kata=KATA, what="the loss", atol=1e-5, rtol=1e-5, hint=HINT)


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_equals_hugging_face_loss_with_labels(name, device):
    cfg = NAMED_CONFIGS[name]
    tokens = random_tokens(3, cfg.n_ctx, cfg.d_vocab, seed=2, device=device)
    with torch.no_grad():
        expected = hf_gpt2(cfg, 0, str(device))(tokens, labels=tokens).loss
        logits = reference_gpt2(cfg, 0, str(device))(tokens)  # the same weights, our layout
    check_tensor(cross_entropy_loss(logits, tokens), expected, kata=KATA,
                 what="the loss vs Hugging Face's GPT2LMHeadModel(tokens, labels=tokens).loss", atol=1e-4, rtol=1e-4,
                 hint="Hugging Face shifts the labels by one inside the model: logits[:, :-1] against tokens[:, 1:].")


@pytest.mark.parametrize("d_vocab", [2, 11, 50257])
def test_a_model_that_knows_nothing_scores_log_d_vocab(d_vocab, device):
    # Equal logits in every row (a different constant per position): every token has probability 1/d_vocab.
    logits = torch.arange(4.0, device=device)[None, :, None].expand(2, 4, d_vocab).contiguous()
    tokens = random_tokens(2, 4, d_vocab, seed=3, device=device)
    check_tensor(cross_entropy_loss(logits, tokens), torch.tensor(math.log(d_vocab), device=device), kata=KATA,
                 what=f"the loss of uniform predictions over {d_vocab} tokens (log d_vocab)", atol=1e-4, rtol=1e-5,
                 hint="A negative mean of log-probabilities: log(1/d_vocab) is -log(d_vocab).")


@given(batch=st.integers(1, 3), posn=st.integers(2, 6), d_vocab=st.integers(2, 12), seed=seeds)
def test_gradients_match_the_reference(batch, posn, d_vocab, seed, device):
    logits, tokens = logits_and_tokens(batch, posn, d_vocab, seed, device)
    mine, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss = cross_entropy_loss(mine, tokens)
    assert loss.requires_grad, "The loss must stay connected to the logits (no .item(), .detach() or torch.no_grad())."
    loss.backward()
    reference(KATA)(theirs, tokens).backward()
    check_tensor(mine.grad, theirs.grad, kata=KATA, what="d loss / d logits", axes="batch posn d_vocab", hint=HINT)


def test_does_not_modify_its_inputs(device):
    logits, tokens = logits_and_tokens(2, 5, 7, 0, device)
    check_inputs_unchanged(cross_entropy_loss, logits, tokens, kata=KATA, what="cross_entropy_loss")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_the_logits(dtype, device):
    check_function_in_dtype(cross_entropy_loss, reference(KATA), *logits_and_tokens(2, 5, 7, 3, device), dtype=dtype,
                            kata=KATA, what="the loss")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(cross_entropy_loss, reference(KATA), *logits_and_tokens(2, 5, 7, 3, "cpu"), kata=KATA,
                           what="cross_entropy_loss")
