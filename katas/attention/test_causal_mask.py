"""Tests for katas/attention/causal_mask.py (apply_causal_mask)."""
import pytest
import torch
from hypothesis import given

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_new_tensor, check_shape, check_tensor, diagnose
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import attention_sizes, seeds

KATA = "attention.causal_mask"
AXES = "batch n_heads query_pos key_pos"
apply_causal_mask = under_test(KATA)


def scores_for(sizes, seed, device, dtype=torch.float32):
    shape = (sizes.batch, sizes.n_heads, sizes.query_pos, sizes.key_pos)
    return randn(*shape, seed=seed, device=device).to(dtype)


def expected_mask(scores):
    """What the mask must return, built independently of any kata: keep j <= i."""
    posn = scores.shape[-1]
    keep = torch.arange(posn)[None, :] <= torch.arange(posn)[:, None]
    return torch.where(keep.to(scores.device), scores, torch.finfo(scores.dtype).min)


@given(sizes=attention_sizes())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype(dtype, sizes, device):
    scores = scores_for(sizes, 0, device, dtype)
    check_shape(apply_causal_mask(scores), tuple(scores.shape), dtype, kata=KATA, what="apply_causal_mask output", axes=AXES)


@given(sizes=attention_sizes(), seed=seeds)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_past_and_present_and_masks_the_future(dtype, sizes, seed, device):
    scores = scores_for(sizes, seed, device, dtype)
    check_tensor(apply_causal_mask(scores), expected_mask(scores), kata=KATA, what="apply_causal_mask output",
                 axes=AXES, atol=0, rtol=0,
                 hint="Query i keeps keys 0..i (itself included) unchanged; keys j > i become torch.finfo(dtype).min.")


def test_first_query_sees_only_itself_and_last_sees_everything(device):
    scores = torch.zeros(1, 1, 4, 4, device=device)
    masked = apply_causal_mask(scores)
    lowest = torch.finfo(torch.float32).min
    assert masked[0, 0, 0, 0] == 0 and (masked[0, 0, 0, 1:] == lowest).all(), (
        f"Row 0 should keep only key 0: got {masked[0, 0, 0].tolist()}.\n{stuck(KATA)}"
    )
    assert (masked[0, 0, -1] == 0).all(), f"The last query should see every key: got {masked[0, 0, -1].tolist()}.\n{stuck(KATA)}"


def test_no_nan_even_with_infinite_or_huge_scores(device):
    scores = randn(2, 2, 5, 5, seed=3, device=device)
    scores[..., 0] = 1e38
    scores[0, 0, 4, 4] = float("-inf")
    masked = apply_causal_mask(scores)
    keep = (expected_mask(scores) == scores).float()
    hint = diagnose(masked, [
        (scores * keep + (1 - keep) * float("-inf"),
         "Fill the masked entries (masked_fill or torch.where); multiplying by a 0/1 mask turns 0 * inf into NaN."),
        (torch.where(keep.bool(), scores, float("-inf")),
         "Fill with torch.finfo(scores.dtype).min, as the docstring says, not -inf."),
    ], "Keep scores[..., i, j] where j <= i, whatever their value (1e38, -inf), and fill the rest with "
       "torch.finfo(scores.dtype).min.")
    check_tensor(masked, expected_mask(scores), kata=KATA, what="apply_causal_mask output", atol=0, rtol=0, axes=AXES,
                 hint=hint)


def test_does_not_modify_its_input(device):
    check_inputs_unchanged(apply_causal_mask, randn(1, 2, 4, 4, seed=1, device=device), kata=KATA, what="apply_causal_mask")


def some_inputs(device) -> tuple:
    return (randn(2, 2, 4, 4, seed=1, device=device),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(apply_causal_mask, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="masked scores")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(apply_causal_mask, reference(KATA), *some_inputs("cpu"), kata=KATA, what="masked scores")


def test_a_single_position_masks_nothing_and_returns_a_new_tensor(device):
    scores = randn(2, 3, 1, 1, seed=1, device=device)
    out = apply_causal_mask(scores)
    check_new_tensor(out, scores, kata=KATA, what="apply_causal_mask on one position")
    check_tensor(out, scores.clone(), kata=KATA, what="masked scores of one position")
