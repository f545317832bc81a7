"""Tests for katas/training/windows.py (make_windows)."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens
from harness.testing.properties import check_inputs_unchanged

KATA = "training.windows"
AXES = "n_windows n_ctx"
make_windows = under_test(KATA)


def sizes():
    """(corpus length, n_ctx) with n_ctx <= corpus length."""
    return st.integers(2, 12).flatmap(lambda n_ctx: st.tuples(st.integers(n_ctx, 60), st.just(n_ctx)))


@given(sizes=sizes())
def test_shape_and_dtype(sizes, device):
    n_tokens, n_ctx = sizes
    expected = (math.ceil((n_tokens - 1) / (n_ctx - 1)), n_ctx)
    check_shape(make_windows(torch.arange(n_tokens, device=device), n_ctx), expected, torch.int64, kata=KATA,
                what=f"windows of a {n_tokens}-token corpus with n_ctx={n_ctx}", axes=AXES,
                hint="ceil((len(corpus) - 1) / (n_ctx - 1)) windows: each covers n_ctx - 1 next-token pairs.")


@given(sizes=sizes())
def test_each_window_is_a_slice_of_the_corpus(sizes, device):
    n_tokens, n_ctx = sizes
    windows = make_windows(torch.arange(n_tokens, device=device), n_ctx)  # token i is the number i: windows show positions
    assert (windows >= 0).all() and (windows < n_tokens).all(), f"a window runs past the corpus's end:\n{windows}\n{stuck(KATA)}"
    steps = windows[:, 1:] - windows[:, :-1]
    assert (steps == 1).all(), f"a window is not n_ctx consecutive tokens of the corpus (no wrap-around, no padding):\n{windows}\n{stuck(KATA)}"


@given(sizes=sizes())
def test_every_next_token_pair_lands_in_some_window(sizes, device):
    n_tokens, n_ctx = sizes
    windows = make_windows(torch.arange(n_tokens, device=device), n_ctx)
    pairs = {(a, b) for window in windows.tolist() for a, b in zip(window, window[1:])}
    missing = sorted(set(zip(range(n_tokens), range(1, n_tokens))) - pairs)
    assert not missing, (
        f"corpus of {n_tokens} tokens, n_ctx={n_ctx}: the predictions 'token {missing[0][0]} -> token {missing[0][1]}' "
        f"({len(missing)} in all) are in no window, so the model never trains on them.\n"
        f"Consecutive windows overlap by one token, and the last one ends on the corpus's last token.\n{stuck(KATA)}"
    )


@given(sizes=sizes())
def test_the_last_window_ends_on_the_last_token(sizes, device):
    n_tokens, n_ctx = sizes
    windows = make_windows(torch.arange(n_tokens, device=device), n_ctx)
    assert windows[-1, -1].item() == n_tokens - 1, (
        f"the last window ends on token {windows[-1, -1].item()}, not on the corpus's last token {n_tokens - 1}.\n{stuck(KATA)}"
    )


@given(sizes=sizes(), seed=st.integers(0, 2**16))
def test_matches_reference(sizes, seed, device):
    n_tokens, n_ctx = sizes
    corpus = random_tokens(1, n_tokens, 50257, seed=seed, device=device)[0]
    check_tensor(make_windows(corpus, n_ctx), reference(KATA)(corpus, n_ctx), kata=KATA, what="windows", axes=AXES,
                 hint="Window i starts at i * (n_ctx - 1); the last start is moved back to len(corpus) - n_ctx.")


@pytest.mark.parametrize(("n_tokens", "n_ctx", "starts"), [(10, 4, [0, 3, 6]), (11, 4, [0, 3, 6, 7]), (5, 5, [0]), (6, 2, [0, 1, 2, 3, 4])])
def test_known_windows(n_tokens, n_ctx, starts, device):
    expected = torch.tensor([list(range(start, start + n_ctx)) for start in starts], device=device)
    check_tensor(make_windows(torch.arange(n_tokens, device=device), n_ctx), expected, kata=KATA,
                 what=f"windows of arange({n_tokens}) with n_ctx={n_ctx}", axes=AXES)


@pytest.mark.parametrize(("n_tokens", "n_ctx"), [(3, 4), (0, 2), (5, 1)])
def test_a_corpus_shorter_than_a_window_or_n_ctx_below_2_is_an_error(n_tokens, n_ctx, device):
    with pytest.raises(ValueError):
        make_windows(torch.arange(n_tokens, device=device), n_ctx)


def test_does_not_modify_the_corpus(device):
    check_inputs_unchanged(lambda corpus: make_windows(corpus, 4), torch.arange(11, device=device), kata=KATA, what="make_windows")
