"""Tests for katas/sampling/temperature.py (apply_temperature)."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import check_inputs_unchanged, check_shape, check_tensor, sampling_inputs, stuck, under_test

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
