"""Tests for katas/mlp/gelu_new.py (gelu_new)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged

KATA = "mlp.gelu_new"
gelu_new = under_test(KATA)


@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=5))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype(dtype, shape, device):
    x = torch.zeros(shape, dtype=dtype, device=device)
    check_shape(gelu_new(x), shape, dtype, kata=KATA, what="gelu_new output", hint="gelu_new works element by element.")


@given(values=arrays("float64", st.integers(1, 40), elements=st.floats(-12, 12, allow_subnormal=False)))
def test_matches_hugging_face_gelu_new(values, device):
    from transformers.activations import NewGELUActivation

    x = torch.from_numpy(values).to(device)
    check_tensor(gelu_new(x), NewGELUActivation()(x), kata=KATA, what="gelu_new output (float64)", atol=1e-12, rtol=1e-10,
                 hint="0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))): check each constant.")


def test_is_the_tanh_approximation_not_the_exact_gelu(device):
    x = torch.linspace(-4, 4, 81, device=device)
    expected = torch.nn.functional.gelu(x, approximate="tanh")
    actual = gelu_new(x)
    hint = diagnose(actual, [(torch.nn.functional.gelu(x), "That is the exact erf GELU: GPT-2 uses the tanh approximation "
                                                           "(they differ by up to ~5e-4).")],
                    "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))): check each constant.",
                    atol=2e-5, rtol=2e-5)  # an erf GELU written by hand rounds differently from torch's: still 20x below their gap
    check_tensor(actual, expected, kata=KATA, what="gelu_new on [-4, 4]", atol=1e-6, rtol=1e-6, hint=hint)


def test_does_not_modify_its_input(device):
    check_inputs_unchanged(gelu_new, randn(3, 4, seed=1, device=device), kata=KATA, what="gelu_new")


def some_inputs(device) -> tuple:
    return (randn(3, 4, seed=1, device=device, scale=3.0),)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(gelu_new, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="gelu_new output")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(gelu_new, reference(KATA), *some_inputs("cpu"), kata=KATA, what="gelu_new output")

