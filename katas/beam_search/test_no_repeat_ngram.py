"""Tests for katas/beam_search/no_repeat_ngram.py (ban_repeated_ngrams)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.dtypes import DEVICE_HINT, OTHER_DTYPES, check_function_in_dtype, on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "beam_search.no_repeat_ngram"
ban_repeated_ngrams = under_test(KATA)


@st.composite
def beams(draw):
    """Beams over a tiny vocabulary, so that n-grams repeat, each beam with its own prefix."""
    num_beams, seq, d_vocab, seed = draw(st.integers(1, 4)), draw(st.integers(1, 12)), draw(st.integers(2, 6)), draw(seeds)
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, d_vocab, (num_beams, seq), generator=generator)
    log_probs = torch.randn(num_beams, d_vocab, generator=generator).log_softmax(dim=-1)
    return log_probs, tokens


@given(beams=beams(), n=st.integers(1, 4))
def test_shape_and_dtype(beams, n, device):
    log_probs, tokens = (t.to(device) for t in beams)
    check_shape(ban_repeated_ngrams(log_probs, tokens, n), tuple(log_probs.shape), torch.float32, kata=KATA,
                what="ban_repeated_ngrams output", axes="beams d_vocab")


@given(beams=beams(), n=st.integers(1, 4))
def test_matches_hugging_face(beams, n, device):
    from transformers import NoRepeatNGramLogitsProcessor

    log_probs, tokens = (t.to(device) for t in beams)
    expected = NoRepeatNGramLogitsProcessor(n)(tokens, log_probs.clone())
    check_tensor(ban_repeated_ngrams(log_probs, tokens, n), expected, kata=KATA, what=f"log-probs after banning {n}-grams",
                 axes="beams d_vocab", hint="Per beam: the last n-1 tokens are the prefix; every earlier window "
                 "starting with that prefix bans its last token, in that beam only.")


def test_a_prefix_seen_in_another_beam_bans_nothing(device):
    tokens = torch.tensor([[1, 2, 5, 1],   # beam 0 ends in 1 and saw "1 2": 2 is banned
                           [3, 4, 0, 1]], device=device)  # beam 1 ends in 1 but never saw "1 x": nothing banned
    log_probs = torch.zeros(2, 6, device=device)
    expected = log_probs.clone()
    expected[0, 2] = float("-inf")
    check_tensor(ban_repeated_ngrams(log_probs, tokens, 2), expected, kata=KATA, what="log-probs after banning 2-grams",
                 axes="beams d_vocab", hint="Each beam looks at its own tokens only: bans must not leak between beams.")


def test_does_not_modify_its_inputs(device):
    check_inputs_unchanged(lambda x, t: ban_repeated_ngrams(x, t, 2), torch.zeros(2, 6, device=device),
                           torch.tensor([[1, 2, 5, 1], [1, 2, 1, 2]], device=device), kata=KATA, what="ban_repeated_ngrams")


def some_beams(device="cpu"):
    tokens = torch.tensor([[1, 2, 1, 2, 1], [0, 1, 2, 0, 1], [3, 3, 3, 3, 3]], device=device)
    log_probs = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).log_softmax(dim=-1).to(device)
    return log_probs, tokens


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_the_log_probs(dtype, device):
    check_function_in_dtype(ban_repeated_ngrams, reference(KATA), *some_beams(device), 2, dtype=dtype, kata=KATA,
                            what="log-probs after the bans")


def test_creates_no_tensor_on_another_device():
    """The tokens stay on the CPU (the bans read them as lists); the log-probs are on the meta device."""
    log_probs, tokens = some_beams()
    out = on_meta(ban_repeated_ngrams, log_probs.to("meta"), tokens, 2, kata=KATA, what="ban_repeated_ngrams")
    check_shape(out, log_probs.shape, log_probs.dtype, kata=KATA, what="log-probs after the bans on the meta device",
                axes="beams d_vocab", device=torch.device("meta"), hint=DEVICE_HINT)
