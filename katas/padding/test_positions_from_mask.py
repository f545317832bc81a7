"""Tests for katas/padding/positions_from_mask.py (positions_from_mask), against Hugging Face's generate()."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.dtypes import check_function_on_meta
from harness.testing.oracles import hf_gpt2
from harness.testing.padding import hf_positions
from harness.testing.properties import check_inputs_unchanged

KATA = "padding.positions_from_mask"
AXES = "batch posn"
positions_from_mask = under_test(KATA)
CFG = Config(d_model=8, n_heads=2, n_layers=1, d_vocab=11, n_ctx=16)


def expected_positions(mask: torch.Tensor) -> torch.Tensor:
    """By a loop, independently of any kata: each real token's index among its row's real tokens, 0 on padding."""
    out = torch.zeros_like(mask, dtype=torch.long)
    for b, row in enumerate(mask.tolist()):
        seen = 0
        for j, real in enumerate(row):
            if real:
                out[b, j] = seen
                seen += 1
    return out


@st.composite
def masks(draw):
    batch, posn = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    if draw(st.booleans()):
        pads = [draw(st.integers(0, posn)) for _ in range(batch)]
        rows = [[0] * pad + [1] * (posn - pad) for pad in pads]
    else:
        rows = [[draw(st.integers(0, 1)) for _ in range(posn)] for _ in range(batch)]
    return torch.tensor(rows, dtype=torch.long)


@given(mask=masks())
def test_counts_the_real_tokens_of_each_row(mask, device):
    mask = mask.to(device)
    check_tensor(positions_from_mask(mask), expected_positions(mask).to(device), kata=KATA, axes=AXES, atol=0, rtol=0,
                 what=f"positions of attention_mask {mask.tolist()}",
                 hint="A row's first real token is at position 0 wherever its column is; padding positions get 0.")


@pytest.mark.parametrize("rows", [
    [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]],
    [[1, 1, 1]],
    [[0, 1], [1, 1]],
    [[0, 0, 0], [0, 1, 1]],
], ids=str)
def test_equal_hugging_face_generate_positions(rows, device):
    mask = torch.tensor(rows, device=device)
    check_tensor(positions_from_mask(mask), hf_positions(hf_gpt2(CFG, 0, str(device)), mask), kata=KATA, axes=AXES,
                 atol=0, rtol=0, what=f"positions of attention_mask {rows} vs Hugging Face's generate()",
                 hint="Hugging Face: cumsum of the mask minus one, then 0 wherever the mask is 0.")


@pytest.mark.parametrize("dtype", [torch.long, torch.int32], ids=str)
def test_takes_any_integer_mask_and_returns_long(dtype, device):
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]], device=device).to(dtype)
    check_tensor(positions_from_mask(mask), torch.tensor([[0, 0, 1], [0, 1, 2]], device=device), kata=KATA, axes=AXES,
                 atol=0, rtol=0, what=f"positions of a {dtype} mask",
                 hint="Return torch.long whatever the mask's dtype (it indexes W_pos): convert with .long() before the cumsum.")


def test_does_not_modify_its_input(device):
    check_inputs_unchanged(positions_from_mask, torch.tensor([[0, 1, 1], [1, 1, 1]], device=device), kata=KATA,
                           what="positions_from_mask")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(positions_from_mask, reference(KATA), torch.tensor([[0, 1, 1]]), kata=KATA, what="positions")
