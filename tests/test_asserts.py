"""The teaching asserts' value messages: numbers where numbers differ, infinities counted apart."""
import math

import pytest
import torch

from harness.testing.asserts import check_tensor


def message_of(actual, expected) -> str:
    with pytest.raises(pytest.fail.Exception) as failure:
        check_tensor(actual, expected, kata="attention.causal_mask", what="output")
    return str(failure.value)


def test_an_infinity_against_a_finite_value_is_counted_not_printed_as_1e308():
    finite_min = torch.finfo(torch.float32).min
    text = message_of(torch.tensor([0.0, -math.inf, 2.0]), torch.tensor([0.0, finite_min, 1.0]))
    assert "1.79769e+308" not in text and "e+269" not in text, text
    assert "Greatest absolute difference: 1 " in text and "1 of them are infinite or NaN" in text
    assert "expected -3.40282e+38, got -inf" in text


def test_only_infinities_differ():
    text = message_of(torch.tensor([math.inf, 1.0]), torch.tensor([-math.inf, 1.0]))
    assert "Greatest absolute difference" not in text and "1 of them are infinite" in text, text
