"""Tests for katas/padding/padding_mask.py (apply_padding_mask)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, under_test
from harness.testing.asserts import check_new_tensor, check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "padding.padding_mask"
AXES = "batch n_heads query_pos key_pos"
apply_padding_mask = under_test(KATA)


def expected_mask(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Built by loops, independently of any kata: keep key j for query i when j <= offset + i and j is real."""
    expected = scores.clone()
    query_pos, key_pos = scores.shape[-2:]
    offset = key_pos - query_pos
    for b in range(scores.shape[0]):
        for i in range(query_pos):
            for j in range(key_pos):
                if j > offset + i or attention_mask[b, j] == 0:
                    expected[b, :, i, j] = torch.finfo(scores.dtype).min
    return expected


@st.composite
def padded_scores(draw):
    """(batch, n_heads, query_pos, key_pos) sizes and an attention mask: left padding, or any pattern."""
    batch, n_heads, key_pos = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 7))
    query_pos = draw(st.integers(1, key_pos))
    if draw(st.booleans()):
        pads = [draw(st.integers(0, key_pos)) for _ in range(batch)]  # left padding; a row may be all padding
        mask = [[0] * pad + [1] * (key_pos - pad) for pad in pads]
    else:
        mask = [[draw(st.integers(0, 1)) for _ in range(key_pos)] for _ in range(batch)]
    return (batch, n_heads, query_pos, key_pos), torch.tensor(mask, dtype=torch.long)


@given(drawn=padded_scores(), seed=seeds)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masks_the_future_and_the_padding(dtype, drawn, seed, device):
    shape, mask = drawn
    scores = randn(*shape, seed=seed, device=device).to(dtype)
    mask = mask.to(device)
    check_tensor(apply_padding_mask(scores, mask), expected_mask(scores, mask), kata=KATA, axes=AXES, atol=0, rtol=0,
                 what=f"scores masked with attention_mask {mask.tolist()}",
                 hint="Mask key j for query i when j is after the query's position (key_pos - query_pos + i) "
                      "or when attention_mask[b, j] == 0; the fill is torch.finfo(dtype).min.")


def test_left_padding_by_hand(device):
    scores = torch.zeros(2, 1, 4, 4, device=device)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]], device=device)
    low = torch.finfo(torch.float32).min
    masked = apply_padding_mask(scores, mask)
    row = masked[0, 0, 3].tolist()
    assert row == [low, low, 0.0, 0.0], (
        f"Row 0 is [pad, pad, a, b]: its last query must keep keys 2 and 3 (real, not in its future) and mask the two "
        f"padded keys 0 and 1. Got {row}. The padding mask is on the KEYS (the last axis), not on the queries.")
    check_tensor(masked[1], expected_mask(scores, mask)[1], kata=KATA, atol=0, rtol=0, what="an unpadded row",
                 hint="A row without padding gets the plain causal mask.")


def test_without_padding_it_is_the_causal_mask(device):
    scores = randn(2, 3, 5, 5, seed=4, device=device)
    check_tensor(apply_padding_mask(scores, torch.ones(2, 5, dtype=torch.long, device=device)),
                 reference("attention.causal_mask")(scores), kata=KATA, atol=0, rtol=0, axes=AXES,
                 what="scores masked with a mask of ones", hint="With no padding only the future is masked.")


@pytest.mark.parametrize("query_pos", [1, 3])
def test_fewer_queries_are_the_last_positions(query_pos, device):
    scores = randn(1, 2, query_pos, 6, seed=5, device=device)
    mask = torch.tensor([[0, 1, 1, 1, 1, 1]], device=device)
    check_tensor(apply_padding_mask(scores, mask), expected_mask(scores, mask), kata=KATA, atol=0, rtol=0, axes=AXES,
                 what=f"{query_pos} queries over 6 keys",
                 hint="The queries are the LAST query_pos positions: query i sits at key_pos - query_pos + i, so the "
                      "last query sees every real key.")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_fully_padded_query_rows_give_no_nan(dtype, device):
    scores = randn(2, 2, 4, 4, seed=6, device=device).to(dtype)
    mask = torch.tensor([[0, 0, 0, 1], [0, 0, 0, 0]], device=device)
    pattern = apply_padding_mask(scores, mask).softmax(dim=-1)
    assert not pattern.isnan().any(), (
        "A padding position's query has every key masked. Its softmax must stay finite: fill with "
        "torch.finfo(dtype).min, not -inf (a row of -inf is 0/0 = NaN, and a NaN spreads through the values).")
    check_tensor(pattern[0, :, 3], torch.nn.functional.one_hot(torch.tensor(3), 4).to(dtype).expand(2, 4).to(device),
                 kata=KATA, what="the last query's attention in [pad, pad, pad, a]", hint="It may only see itself.")


def test_does_not_modify_its_inputs(device):
    scores = randn(2, 2, 4, 4, seed=1, device=device)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], device=device)
    check_inputs_unchanged(apply_padding_mask, scores, mask, kata=KATA, what="apply_padding_mask")
    check_new_tensor(apply_padding_mask(scores[:, :, -1:], torch.ones_like(mask)), scores, kata=KATA,
                     what="apply_padding_mask with nothing to mask")


def some_inputs(device) -> tuple:
    return randn(2, 2, 3, 4, seed=1, device=device), torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], device=device)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(apply_padding_mask, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="masked scores")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(apply_padding_mask, reference(KATA), *some_inputs("cpu"), kata=KATA, what="masked scores")
