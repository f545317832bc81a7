"""Teaching asserts: type, then shape (with axis names), then dtype, then NaNs, then values (the
largest difference and where it is), then a hint; and `diagnose`, the hint for a recognised mistake."""
import math

import pytest
import torch
from torch import Tensor

from harness.failures import note_recognised, note_shape_failure
from harness.testing import stuck


def _advice(kata: str, hint: str = "") -> str:
    return "\n".join(line for line in (hint, stuck(kata)) if line)


def check_shape(
    actual, shape: tuple, dtype: torch.dtype, *, kata: str, what: str, axes: str = "", device=None, hint: str = ""
) -> None:
    """Assert the type, shape, dtype (and device) of `actual`."""
    __tracebackhide__ = True
    advice = _advice(kata, hint)
    if not isinstance(actual, Tensor):
        _shape_fail(f"{what} should be a torch.Tensor, got {type(actual).__name__}.\n{advice}")
    if tuple(actual.shape) != tuple(shape):
        named = f" = ({', '.join(axes.split())})" if axes else ""
        _shape_fail(f"{what} has the wrong shape: expected {tuple(shape)}{named}, got {tuple(actual.shape)}.\n{advice}")
    if actual.dtype != dtype:
        _shape_fail(f"{what} has dtype {actual.dtype}, expected {dtype}.\n{advice}")
    if device is not None and actual.device != device:
        _shape_fail(f"{what} is on {actual.device}, expected {device}.\n{advice}")


def _shape_fail(message: str) -> None:
    """Fail the test as a wrong type, shape, dtype or device: recorded as such, the verdict puts it first."""
    __tracebackhide__ = True
    note_shape_failure()
    pytest.fail(message, pytrace=False)


def check_tensor(
    actual,
    expected: Tensor,
    *,
    kata: str,
    what: str,
    axes: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    hint: str = "",
) -> None:
    """Assert that `actual` equals `expected`: type, shape, dtype, NaNs, then values."""
    __tracebackhide__ = True
    check_shape(actual, expected.shape, expected.dtype, kata=kata, what=what, axes=axes, device=expected.device, hint=hint)
    advice = _advice(kata, hint)
    new_nans = actual.isnan() & ~expected.isnan()
    if new_nans.any():
        where = tuple(new_nans.nonzero()[0].tolist())
        pytest.fail(
            f"{what} contains NaN ({int(new_nans.sum())} of {actual.numel()} values, first at index {where}) "
            f"where the expected values are finite.\n{advice}",
            pytrace=False,
        )
    close = _close(actual.detach(), expected.detach(), atol=atol, rtol=rtol)
    if not close.all():
        pytest.fail(f"{what} has the wrong values.\n{_mismatch_summary(actual, expected, close, atol=atol, rtol=rtol)}\n"
                    f"{_worst_entry(actual, expected)}\n{advice}", pytrace=False)


# Our own comparison rather than torch.testing.assert_close: its first call imports
# torch.distributed.tensor, most of a second on every cold run of a suite.
def _close(actual: Tensor, expected: Tensor, *, atol: float, rtol: float) -> Tensor:
    """Where |actual - expected| <= atol + rtol * |expected| (NaN matches NaN); exact for integers and bools."""
    if not (expected.is_floating_point() or expected.is_complex()):
        return actual == expected
    return torch.isclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True)


def _mismatch_summary(actual: Tensor, expected: Tensor, close: Tensor, *, atol: float, rtol: float) -> str:
    wrong = int((~close).sum())
    lines = [f"Mismatched elements: {wrong} / {close.numel()} ({100 * wrong / close.numel():.1f}%)"]
    if expected.is_floating_point():
        a, e = actual.detach().double()[~close], expected.detach().double()[~close]
        finite = a.isfinite() & e.isfinite()
        if finite.any():  # differences between numbers; an infinity or a NaN is counted apart, not as 1.8e308
            absolute = (a - e)[finite].abs()
            relative = absolute / e[finite].abs()
            lines.append(f"Greatest absolute difference: {absolute.max().item():.6g} (up to {atol:g} allowed)")
            lines.append(f"Greatest relative difference: {relative.max().item():.6g} (up to {rtol:g} allowed)")
        if not finite.all():
            lines.append(f"{int((~finite).sum())} of them are infinite or NaN on one side where the other is not (or infinite "
                         "with the other sign)")
    return "\n".join(lines)


def _worst_entry(actual: Tensor, expected: Tensor) -> str:
    """The entry that differs most. Equal values (infinities of the same sign included) differ by 0;
    a NaN on one side only, or infinities that differ, is the worst of all."""
    actual, expected = actual.detach().double(), expected.detach().double()
    difference = (actual - expected).abs()
    same = (actual == expected) | (actual.isnan() & expected.isnan())
    difference = difference.nan_to_num(nan=math.inf, posinf=torch.finfo(torch.float64).max)  # NaN > inf vs finite
    difference = torch.where(same, torch.zeros_like(difference), difference)
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    return f"At index {index}: expected {expected[index].item():.6g}, got {actual[index].item():.6g}."


def check_unchanged(before: Tensor, after: Tensor, *, kata: str, what: str) -> None:
    __tracebackhide__ = True
    if not torch.equal(before, after):
        pytest.fail(
            f"{what} was modified in place. Return a new tensor instead (e.g. masked_fill, not masked_fill_; "
            f"x = x + y, not x += y).\n{stuck(kata)}",
            pytrace=False,
        )


def check_new_tensor(out, inputs: Tensor, *, kata: str, what: str) -> None:
    """The docstring says "a new tensor": not the input itself, and no storage shared with it
    (even when the operation is the identity, such as a temperature of exactly 1)."""
    __tracebackhide__ = True
    if out is inputs:
        pytest.fail(f"{what} returned its input itself, not a new tensor: a caller that changes the result in place "
                    f"would change its logits too. Return a new tensor even when nothing changes (e.g. logits.clone()).\n"
                    f"{stuck(kata)}", pytrace=False)
    if isinstance(out, Tensor) and out.device.type != "meta" and out.numel() and \
            out.untyped_storage().data_ptr() == inputs.untyped_storage().data_ptr():
        pytest.fail(f"{what} returned a view of its input (they share memory), not a new tensor: writing into one "
                    f"writes into the other. Return a new tensor (e.g. .clone()).\n{stuck(kata)}", pytrace=False)


def diagnose(actual, known_mistakes: "list[tuple[Tensor, str]]", general: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> str:
    """The hint of the first known mistake whose output `actual` equals; otherwise `general`.

    A pitfall test gives its pitfall's hint only when it has recognised that mistake: a layer norm
    with the unbiased variance is not told to move eps inside the square root."""
    if not isinstance(actual, Tensor):
        return general
    for wrong, hint in known_mistakes:
        if isinstance(wrong, Tensor) and wrong.shape == actual.shape and wrong.dtype == actual.dtype and \
                torch.allclose(actual.detach(), wrong, atol=atol, rtol=rtol, equal_nan=True):
            note_recognised(hint)
            return hint
    return general
