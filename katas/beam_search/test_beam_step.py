"""Tests for katas/beam_search/beam_step.py (beam_step)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.strategies import seeds

KATA = "beam_search.beam_step"
beam_step = under_test(KATA)
NAMES = ("next beams' tokens", "next beams' scores", "parents", "candidates", "candidate scores", "finished mask")
# What each result is, in the words of the rule it follows: the message of the first result that differs.
CANDIDATES_RULE = ("The candidates are the 2 * num_beams best of every beam b extended by every token t, scored scores[b] + "
                   "log_probs[b, t], best first.")
RULES = {
    "candidates": CANDIDATES_RULE,
    "candidate scores": CANDIDATES_RULE + " The scores are raw sums: no length penalty here.",
    "finished mask": ("A candidate is finished when its token is eos_token_id (or on the last step), and only if it ranks "
                      "among the first num_beams of the 2 * num_beams candidates."),
    "next beams' tokens": "The next beams are the num_beams best candidates that did not end, best first.",
    "next beams' scores": "The next beams' scores are their candidates' scores (with -1e9 on a candidate that ended).",
    "parents": "parents[i] is the index of the old beam that next beam i extends (the candidate's index // d_vocab).",
}
ORDER = ("candidates", "candidate scores", "finished mask", "next beams' tokens", "next beams' scores", "parents")
TIE_HINT = ("With equal scores, the order is torch.topk's: take the 2 * num_beams candidates with torch.topk over "
            "the flattened (beams x vocabulary) scores, and the live beams with a second torch.topk (no sort, no loop).")


def check_step(actual, expected, hint=""):
    __tracebackhide__ = True
    assert isinstance(actual, tuple) and len(actual) == 6, (
        f"beam_step should return a tuple of 6 tensors: {', '.join(NAMES)}.\n{stuck(KATA)}")
    results, wanted = dict(zip(NAMES, actual)), dict(zip(NAMES, expected))
    for name in ORDER:  # the candidates first: every other result is made from them
        check_tensor(results[name], wanted[name], kata=KATA, what=f"beam_step's {name}", hint=f"{RULES[name]} {hint}".strip())


@st.composite
def step_inputs(draw, ties=False):
    """Random beams; with ties=True, scores and logits take few distinct values, so candidates tie."""
    num_beams, seq, d_vocab, seed = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 12)), draw(seeds)
    d_vocab = max(d_vocab, 2 * num_beams)
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, d_vocab, (num_beams, seq), generator=generator)
    if ties:
        scores = -torch.randint(0, 2, (num_beams,), generator=generator).float()
        logits = torch.randint(0, 3, (num_beams, d_vocab), generator=generator).float()
    else:
        scores = -3 * torch.rand(num_beams, generator=generator)
        logits = torch.randn(num_beams, d_vocab, generator=generator)
    log_probs = logits.log_softmax(dim=-1)
    return tokens, scores, log_probs, draw(st.none() | st.integers(0, d_vocab - 1)), draw(st.booleans())


@given(inputs=step_inputs())
def test_matches_reference(inputs, device):
    tokens, scores, log_probs, eos, last = (x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
    check_step(beam_step(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last),
               reference(KATA)(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last))


@given(inputs=step_inputs(ties=True))
def test_ties_come_out_in_topk_order(inputs, device):
    """Equal scores everywhere: Hugging Face's order among them is torch.topk's, in both of its topk calls."""
    tokens, scores, log_probs, eos, last = (x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
    check_step(beam_step(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last),
               reference(KATA)(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last), hint=TIE_HINT)


def test_eos_finishes_a_beam_only_within_the_top_num_beams(device):
    tokens = torch.tensor([[7], [8]], device=device)
    scores = torch.tensor([0.0, -1.0], device=device)
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.1, 0.7]], device=device))
    # candidates by score: (0,0) -0.69, (0,1) -1.20, (1,3) -1.36, (0,2) -1.61; only the first two can finish
    candidates = torch.tensor([[7, 0], [7, 1], [8, 3], [7, 2]], device=device)
    candidate_scores = torch.log(torch.tensor([0.5, 0.3, 0.7 / torch.e, 0.2], device=device))
    got = beam_step(tokens, scores, log_probs, eos_token_id=1)
    expected = (candidates[[0, 2]], candidate_scores[[0, 2]], torch.tensor([0, 1], device=device), candidates, candidate_scores,
                torch.tensor([False, True, False, False], device=device))
    check_step(got, expected, hint="EOS candidates leave the live beams; they are finished only if ranked in the top num_beams.")
    got = beam_step(tokens, scores, log_probs, eos_token_id=3)  # (1, 3) ranks third of four: it ends, unfinished
    expected = (candidates[[0, 1]], candidate_scores[[0, 1]], torch.tensor([0, 0], device=device), candidates, candidate_scores,
                torch.tensor([False, False, False, False], device=device))
    check_step(got, expected, hint="A candidate that ends outside the first num_beams of the 2 * num_beams is not finished, "
               "and not live either: it is dropped.")


def test_the_last_step_finishes_the_top_num_beams(device):
    tokens = torch.tensor([[1], [2]], device=device)
    log_probs = torch.log(torch.tensor([[0.6, 0.4, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]], device=device))
    got = beam_step(tokens, torch.zeros(2, device=device), log_probs, eos_token_id=None, is_last_step=True)
    check_tensor(got[3][:2], torch.tensor([[2, 0], [1, 0]], device=device), kata=KATA,
                 what="the two best candidates on the last step", hint="Candidates come best first (torch.topk's order).")
    check_tensor(got[5], torch.tensor([True, True, False, False], device=device), kata=KATA,
                 what="finished mask on the last step", hint="On the last step every candidate ends; the top num_beams of them are finished.")


def some_step(device="cpu"):
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 7, (3, 4), generator=generator).to(device)
    scores = (-3 * torch.rand(3, generator=generator)).to(device)
    log_probs = torch.randn(3, 7, generator=generator).log_softmax(dim=-1).to(device)
    return tokens, scores, log_probs


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
@pytest.mark.parametrize("eos_token_id", [None, 2])
def test_keeps_the_dtype_of_its_scores(dtype, eos_token_id, device):
    check_function_in_dtype(beam_step, reference(KATA), *some_step(device), dtype=dtype, kata=KATA, what="beam_step's results",
                            eos_token_id=eos_token_id)



@pytest.mark.parametrize("eos_token_id", [None, 2])
@pytest.mark.parametrize("is_last_step", [False, True])
def test_creates_no_tensor_on_another_device(eos_token_id, is_last_step):
    """On the `meta` device (no GPU needed): a mask or index made on the CPU whatever the inputs' device fails here."""
    check_function_on_meta(beam_step, reference(KATA), *some_step(), kata=KATA, what="beam_step", eos_token_id=eos_token_id,
                           is_last_step=is_last_step)
