"""Tests for katas/sampling/no_repeat_ngram.py (ban_repeated_ngrams), against Hugging Face's NoRepeatNGramLogitsProcessor."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.dtypes import DEVICE_HINT, OTHER_DTYPES, check_function_in_dtype, on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "sampling.no_repeat_ngram"
ban_repeated_ngrams = under_test(KATA)


@st.composite
def rows(draw):
    """Rows over a tiny vocabulary, so that n-grams repeat, each row with its own prefix."""
    num_rows, seq, d_vocab, seed = draw(st.integers(1, 4)), draw(st.integers(1, 12)), draw(st.integers(2, 6)), draw(seeds)
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, d_vocab, (num_rows, seq), generator=generator)
    scores = torch.randn(num_rows, d_vocab, generator=generator)
    return scores, tokens


@given(rows=rows(), n=st.integers(1, 4))
def test_shape_and_dtype(rows, n, device):
    scores, tokens = (t.to(device) for t in rows)
    check_shape(ban_repeated_ngrams(scores, tokens, n), tuple(scores.shape), torch.float32, kata=KATA,
                what="ban_repeated_ngrams output", axes="rows d_vocab")


@given(rows=rows(), n=st.integers(1, 4))
def test_matches_hugging_face(rows, n, device):
    from transformers import NoRepeatNGramLogitsProcessor

    scores, tokens = (t.to(device) for t in rows)
    expected = NoRepeatNGramLogitsProcessor(n)(tokens, scores.clone())
    check_tensor(ban_repeated_ngrams(scores, tokens, n), expected, kata=KATA, what=f"scores after banning {n}-grams",
                 axes="rows d_vocab", hint="Per row: the last n-1 tokens are the prefix; every earlier window "
                 "starting with that prefix bans its last token, in that row only.")


def test_a_prefix_seen_in_another_row_bans_nothing(device):
    tokens = torch.tensor([[1, 2, 5, 1],   # row 0 ends in 1 and saw "1 2": 2 is banned
                           [3, 4, 0, 1]], device=device)  # row 1 ends in 1 but never saw "1 x": nothing banned
    scores = torch.zeros(2, 6, device=device)
    expected = scores.clone()
    expected[0, 2] = float("-inf")
    check_tensor(ban_repeated_ngrams(scores, tokens, 2), expected, kata=KATA, what="scores after banning 2-grams",
                 axes="rows d_vocab", hint="Each row looks at its own tokens only: bans must not leak between rows.")


def test_does_not_modify_its_inputs(device):
    check_inputs_unchanged(lambda x, t: ban_repeated_ngrams(x, t, 2), torch.zeros(2, 6, device=device),
                           torch.tensor([[1, 2, 5, 1], [1, 2, 1, 2]], device=device), kata=KATA, what="ban_repeated_ngrams")


def some_rows(device="cpu"):
    tokens = torch.tensor([[1, 2, 1, 2, 1], [0, 1, 2, 0, 1], [3, 3, 3, 3, 3]], device=device)
    scores = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).log_softmax(dim=-1).to(device)
    return scores, tokens


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_the_scores(dtype, device):
    check_function_in_dtype(ban_repeated_ngrams, reference(KATA), *some_rows(device), 2, dtype=dtype, kata=KATA,
                            what="scores after the bans")


def test_creates_no_tensor_on_another_device():
    """The tokens stay on the CPU (the bans read them as lists); the scores are on the meta device."""
    scores, tokens = some_rows()
    out = on_meta(ban_repeated_ngrams, scores.to("meta"), tokens, 2, kata=KATA, what="ban_repeated_ngrams")
    check_shape(out, scores.shape, scores.dtype, kata=KATA, what="scores after the bans on the meta device",
                axes="rows d_vocab", device=torch.device("meta"), hint=DEVICE_HINT)
