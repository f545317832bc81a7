"""Tests for katas/sampling/temperature.py (apply_temperature)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_new_tensor, check_shape, check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import OTHER_DTYPES, check_function_in_dtype, check_function_on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import sampling_inputs

KATA = "sampling.temperature"
apply_temperature = under_test(KATA)
temperatures = st.floats(0.05, 5.0)


@given(inputs=sampling_inputs(), temperature=temperatures)
def test_shape_and_dtype(inputs, temperature, device):
    logits = inputs.logits.to(device)
    check_shape(apply_temperature(logits, temperature), tuple(logits.shape), torch.float32, kata=KATA,
                what="apply_temperature output", axes="batch d_vocab")


@given(inputs=sampling_inputs(), temperature=temperatures)
def test_matches_hugging_face(inputs, temperature, device):
    from transformers import TemperatureLogitsWarper

    logits = inputs.logits.to(device)
    expected = TemperatureLogitsWarper(temperature)(inputs.tokens.to(device), logits.clone())
    check_tensor(apply_temperature(logits, temperature), expected, kata=KATA, what="apply_temperature output",
                 axes="batch d_vocab", hint="Divide the logits by the temperature.")


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_a_temperature_that_is_not_positive_is_an_error(temperature, device):
    try:
        apply_temperature(torch.randn(2, 5, device=device), temperature)
    except ValueError:
        return
    pytest.fail(f"apply_temperature(logits, {temperature}) should raise ValueError.\n{stuck(KATA)}", pytrace=False)


def test_does_not_modify_the_logits(device):
    check_inputs_unchanged(lambda x: apply_temperature(x, 0.5), torch.randn(3, 7, device=device), kata=KATA,
                           what="apply_temperature")


def some_inputs(device) -> tuple:
    return (randn(3, 7, seed=1, device=device), 0.7,)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    check_function_in_dtype(apply_temperature, reference(KATA), *some_inputs(device), dtype=dtype, kata=KATA, what="logits with temperature 0.7")


def test_creates_no_tensor_on_another_device():
    check_function_on_meta(apply_temperature, reference(KATA), *some_inputs("cpu"), kata=KATA, what="logits with temperature 0.7")


def test_a_temperature_of_one_still_returns_a_new_tensor(device):
    logits = randn(3, 7, seed=1, device=device)
    out = apply_temperature(logits, 1.0)
    check_new_tensor(out, logits, kata=KATA, what="apply_temperature(logits, 1.0)")
    check_tensor(out, logits.clone(), kata=KATA, what="logits with temperature 1.0")
