"""Tests for katas/interp/heads_above.py (heads_above)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.interp import INDUCTION_HEADS, PREVIOUS_TOKEN_HEADS, induction_model, repeated

KATA = "interp.heads_above"
heads_above = under_test(KATA)


def named_by_hand(scores: torch.Tensor, threshold: float) -> list[str]:
    """The independent computation: every head looked at in turn, then sorted by score, highest first."""
    found = []
    for layer in range(scores.shape[0]):
        for head in range(scores.shape[1]):
            if scores[layer, head] > threshold:
                found.append((-float(scores[layer, head]), layer, head))
    return [f"{layer}.{head}" for _, layer, head in sorted(found)]


def check_names(actual, expected: list[str], scores, threshold) -> None:
    __tracebackhide__ = True
    assert isinstance(actual, list) and all(isinstance(name, str) for name in actual), (
        f"heads_above must return a list of str such as ['1.3', '0.2'], got {actual!r}\n{stuck(KATA)}")
    assert actual == expected, (
        f"heads_above(scores, threshold={threshold}) with scores of shape {tuple(scores.shape)} (layer, head):\n"
        f"  expected {expected}\n  got      {actual}\n"
        "A head is named 'layer.head'; keep scores strictly above the threshold, the highest first "
        f"(equal scores: earlier layer, then lower head, first).\n{stuck(KATA)}")


score_tables = st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(0, 2**16)).map(
    lambda shape: torch.rand(shape[0], shape[1], generator=torch.Generator().manual_seed(shape[2])))


@given(scores=score_tables, threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9]))
def test_names_every_head_above_the_threshold_highest_first(scores, threshold):
    check_names(heads_above(scores, threshold), named_by_hand(scores, threshold), scores, threshold)


def test_names_heads_past_the_tenth_and_layers_apart_from_heads():
    """GPT-2 small's 12 heads: head 10 of layer 7 is '7.10'; a 3 x 12 table is not read as 12 x 3."""
    scores = torch.zeros(3, 12)
    scores[2, 10], scores[1, 3], scores[0, 11] = 0.9, 0.8, 0.7
    check_names(heads_above(scores, 0.5), ["2.10", "1.3", "0.11"], scores, 0.5)


def test_a_score_equal_to_the_threshold_is_not_above_it_and_ties_keep_the_order_of_the_heads():
    scores = torch.tensor([[0.5, 0.7, 0.2], [0.7, 0.5, 0.9]])
    check_names(heads_above(scores, 0.5), ["1.2", "0.1", "1.0"], scores, 0.5)


def test_no_head_above_gives_an_empty_list():
    scores = torch.full((2, 4), 0.1)
    check_names(heads_above(scores, 0.5), [], scores, 0.5)


@pytest.mark.parametrize("index, heads", [(0, PREVIOUS_TOKEN_HEADS), (2, INDUCTION_HEADS)], ids=["previous-token", "induction"])
def test_names_the_induction_models_heads(index, heads, device):
    model = induction_model(device)
    scores = reference("interp.head_detectors")(model, repeated(8, seed=9, device=device))[index].cpu()
    names = heads_above(scores, 0.4)
    assert sorted(names) == sorted(f"{layer}.{head}" for layer, head in heads), (
        f"heads_above(scores, 0.4) on the induction model's scores named {names}\n{stuck(KATA)}")
    check_names(names, named_by_hand(scores, 0.4), scores, 0.4)


def test_leaves_the_scores_unchanged():
    scores = torch.rand(2, 4, generator=torch.Generator().manual_seed(3))
    kept = scores.clone()
    heads_above(scores, 0.5)
    assert torch.equal(scores, kept), f"heads_above changed the scores in place (sort a copy, or use sorted()).\n{stuck(KATA)}"
