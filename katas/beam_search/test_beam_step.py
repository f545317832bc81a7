"""Tests for katas/beam_search/beam_step.py (beam_step)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype
from harness.testing.strategies import seeds

KATA = "beam_search.beam_step"
beam_step = under_test(KATA)
NAMES = ("next live tokens", "next live scores", "finished tokens", "finished scores")


def check_step(actual, expected, hint=""):
    __tracebackhide__ = True
    assert isinstance(actual, tuple) and len(actual) == 4, f"beam_step should return a tuple of 4 tensors.\n{stuck(KATA)}"
    for name, got, want in zip(NAMES, actual, expected):
        check_tensor(got, want, kata=KATA, what=f"beam_step's {name}", hint=hint)


@st.composite
def step_inputs(draw):
    num_beams, seq, d_vocab, seed = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 8)), draw(seeds)
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, d_vocab, (num_beams, seq), generator=generator)
    scores = -3 * torch.rand(num_beams, generator=generator)
    log_probs = torch.randn(num_beams, d_vocab, generator=generator).log_softmax(dim=-1)
    return tokens, scores, log_probs, draw(st.none() | st.integers(0, d_vocab - 1)), draw(st.booleans())


@given(inputs=step_inputs())
def test_matches_reference(inputs, device):
    tokens, scores, log_probs, eos, last = (x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
    check_step(beam_step(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last),
               reference(KATA)(tokens, scores, log_probs, eos_token_id=eos, is_last_step=last))


def test_eos_finishes_a_beam_only_within_the_top_num_beams(device):
    tokens = torch.tensor([[7], [8]], device=device)
    scores = torch.tensor([0.0, -1.0], device=device)
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.1, 0.7]], device=device))
    # candidates by score: (0,0) -0.69, (0,1) -1.20, (1,3) -1.36, (0,2) -1.61; only the first two can finish
    eos = 1
    got = beam_step(tokens, scores, log_probs, eos_token_id=eos)
    expected = (torch.tensor([[7, 0], [8, 3]], device=device), torch.log(torch.tensor([0.5, 0.7 / torch.e], device=device)),
                torch.tensor([[7, 1]], device=device), torch.log(torch.tensor([0.3], device=device)))
    check_step(got, expected, hint="EOS candidates leave the live beams; they are finished only if ranked in the top num_beams.")
    got = beam_step(tokens, scores, log_probs, eos_token_id=3)  # (1, 3) ranks third of four: dropped, not finished
    check_tensor(got[2], torch.zeros(0, 2, dtype=torch.long, device=device), kata=KATA,
                 what="finished tokens when the EOS candidate ranks below num_beams",
                 hint="A finished candidate outside the first num_beams of the 2 * num_beams is dropped.")


def test_the_last_step_finishes_the_top_num_beams(device):
    tokens = torch.tensor([[1], [2]], device=device)
    log_probs = torch.log(torch.tensor([[0.6, 0.4], [0.9, 0.1]], device=device))
    got = beam_step(tokens, torch.zeros(2, device=device), log_probs, eos_token_id=None, is_last_step=True)
    check_tensor(got[2], torch.tensor([[2, 0], [1, 0]], device=device), kata=KATA, what="finished tokens on the last step",
                 hint="On the last step every candidate ends; the top num_beams of them are finished.")


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

