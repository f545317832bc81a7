"""Gradients of a module under test against the reference's."""
import pytest
import torch
from torch import Tensor, nn

from harness.failures import note_recognised
from harness.testing import stuck
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn

NAMES_SHOWN = 10  # a GPT-2 has dozens of parameters: a message names this many, then counts the rest


def check_gradients(module: nn.Module, expected: nn.Module, *inputs, kata: str, what: str, seed: int = 0,
                    atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Backward through the module under test and the reference (same weights, same inputs): every
    parameter that learns in the reference gets a gradient, non-zero, and equal to the reference's.

    The loss is a seeded random weighting of the output (a plain .sum() gives a layer norm's
    scale no gradient at all). Parameters whose reference gradient is zero (attention's b_K: a
    constant added to every key does not change the softmax) are not checked.

    Every parameter is looked at before anything is reported. In this order: a computation cut off
    from all the parameters; parameters with no gradient (or a zero one), named: unused if the
    output is wrong, used through .detach()/.data if it is right; then every parameter whose
    gradient has the wrong values, named, with the details of the first and a hint when the
    gradients are the reference's times a constant.
    """
    __tracebackhide__ = True
    advice = stuck(kata)
    mine, theirs = dict(module.named_parameters()), dict(expected.named_parameters())
    for param in (*mine.values(), *theirs.values()):
        param.grad = None
    with torch.enable_grad():
        output = expected(*inputs)
        weights = randn(*output.shape, seed=seed, device=output.device).to(output.dtype)
        (output * weights).sum().backward()
        actual = module(*inputs)
        if not isinstance(actual, Tensor) or not actual.requires_grad:
            pytest.fail(f"{what} does not require grad: nothing it returns can train. Keep the computation "
                        f"differentiable: no .detach(), .data, .item() or torch.no_grad() in forward.\n{advice}", pytrace=False)
        check_shape(actual, output.shape, output.dtype, kata=kata, what=what)
        (actual * weights).sum().backward()
    output_right = actual.device == output.device and \
        bool(torch.isclose(actual.detach(), output.detach(), atol=atol, rtol=rtol, equal_nan=True).all())

    learning = {name: param.grad for name, param in theirs.items()
                if param.grad is not None and param.grad.abs().max() > 1e-6}
    grads = {name: mine[name].grad if name in mine else None for name in learning}
    no_grad = [name for name, grad in grads.items() if grad is None]
    zero = [name for name, grad in grads.items() if grad is not None and bool((grad == 0).all())]
    if grads and len(no_grad) == len(grads):
        pytest.fail(f"No parameter gets a gradient, though {what} requires grad: the computation is cut off from the "
                    f"module's own parameters (a .detach() or .data, or a copy of them made in forward with torch.tensor "
                    f"or a new nn.Parameter). Use the parameters themselves.\n{advice}", pytrace=False)
    if no_grad or zero:  # a recognised mistake: named before any value, which it would only make wrong
        diagnosis = _no_gradient(no_grad, grads, learning, what, output_right) if no_grad else \
            _zero_gradient(zero, what, output_right)
        note_recognised(diagnosis)
        pytest.fail(f"{diagnosis}\n{advice}", pytrace=False)

    for name, grad in grads.items():
        check_shape(grad, learning[name].shape, learning[name].dtype, kata=kata, what=f"The gradient of {name}",
                    device=learning[name].device)
    wrong = [name for name, grad in grads.items()
             if not torch.isclose(grad, learning[name], atol=atol, rtol=rtol, equal_nan=True).all()]
    if wrong:
        _fail_wrong_values(wrong, grads, learning, kata=kata, what=what, output_right=output_right, atol=atol, rtol=rtol)


def _fail_wrong_values(wrong: "list[str]", grads: dict, learning: dict, *, kata: str, what: str, output_right: bool,
                       atol: float, rtol: float) -> None:
    """Name every parameter whose gradient is wrong (and those that are right), then check_tensor's
    details for the first, with the scaling hint when the gradients are the reference's times a constant."""
    __tracebackhide__ = True
    right = [name for name in grads if name not in wrong]
    first = wrong[0]
    try:
        check_tensor(grads[first], learning[first], kata=kata, what=f"The gradient of {first}", atol=atol, rtol=rtol,
                     hint=_hint(wrong, grads, learning, what=what, output_right=output_right, atol=atol, rtol=rtol))
    except pytest.fail.Exception as failure:
        details = failure.msg
    else:  # not reached: check_tensor fails where isclose did
        details = f"The gradient of {first} has the wrong values.\n{stuck(kata)}"
    if len(wrong) == 1:
        header = f"The gradient of {first} has the wrong values"
    else:
        header = f"The gradients of {_listed(wrong)} have the wrong values"
    if right:
        header += f" ({_listed(right)} {'is' if len(right) == 1 else 'are'} right)"
    first_line = f"The gradient of {first} has the wrong values.\n"
    if details.startswith(first_line):  # check_tensor's own first line, said again by the header
        details = details[len(first_line):]
        header += "." if len(wrong) == 1 else f". In {first}:"
    else:  # NaN where the reference's is finite
        header += "."
    pytest.fail(f"{header}\n{details}", pytrace=False)


def _hint(wrong: "list[str]", grads: dict, learning: dict, *, what: str, output_right: bool, atol: float, rtol: float) -> str:
    first = wrong[0]
    if not (grads[first].isfinite() | ~learning[first].isfinite()).all():
        return ""  # check_tensor's message says where the NaN (or infinity) is: no guess at its cause
    return _scaled(wrong, grads, learning, atol=atol, rtol=rtol) or _unscaled(wrong, what, output_right)


def _unscaled(wrong: "list[str]", what: str, output_right: bool) -> str:
    """The hint for wrong gradients that are not the reference's times a constant."""
    if output_right:
        return (f"{what} is right but {'this gradient is' if len(wrong) == 1 else 'these gradients are'} not: part of the "
                f"forward goes around autograd (a .detach() or .data in one term).")
    if len(wrong) == 1:  # only its gradient differs: the mistake is where it is used
        return f"The forward uses {wrong[0]} differently from the reference (or only part of it)."
    return f"{what} itself differs from the reference, and so does every gradient that flows through the mistake."


def _listed(names: "list[str]") -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_SHOWN])} and {len(names) - NAMES_SHOWN} more"


def _no_gradient(names: "list[str]", grads: dict, learning: dict, what: str, output_right: bool) -> str:
    """Parameters with no gradient at all (grad None) while others have one."""
    one = len(names) == 1
    subject = f"{_listed(names)} {'gets' if one else 'get'} no gradient"
    if output_right:  # the output needs them, so they are used, but autograd does not see them
        them = "it" if one else "them"
        return (f"{subject}, though {what} is right: {'it takes' if one else 'they take'} part, but through a .detach() "
                f"or .data (on {them} or on a result computed from {them}), or a copy made with torch.tensor, which "
                f"autograd cannot see through. Keep the path from {them} to the output differentiable.")
    message = f"{subject}: {'it never takes' if one else 'they never take'} part in {what}."
    if one:
        stand_ins = _same_shape_siblings(names[0], learning[names[0]].shape, grads)
        if stand_ins:
            return f"{message} Is {' or '.join(stand_ins)} (the same shape) used in its place?"
    return f"{message} Is another weight used in {'its' if one else 'their'} place?"


def _zero_gradient(names: "list[str]", what: str, output_right: bool) -> str:
    """Parameters whose gradient is exactly zero everywhere (the reference's is not)."""
    one = len(names) == 1
    subject = f"The gradient of {names[0]} is" if one else f"The gradients of {_listed(names)} are"
    if output_right:
        return (f"{subject} zero everywhere, though {what} is right: {'it reaches' if one else 'they reach'} the output "
                f"only through an operation with no gradient (such as round(), sign() or a comparison).")
    return (f"{subject} zero everywhere: {'it has' if one else 'they have'} no effect on {what}. "
            f"Is another weight used in {'its' if one else 'their'} place?")


def _same_shape_siblings(name: str, shape: torch.Size, grads: dict) -> "list[str]":
    """The parameters of the same submodule as `name`, with its shape, that do get a gradient."""
    parent = name.rpartition(".")[0]
    return [other for other, grad in grads.items() if other != name and other.rpartition(".")[0] == parent
            and grad is not None and grad.shape == shape and not bool((grad == 0).all())]


def _factor(grad: Tensor, reference: Tensor, *, atol: float, rtol: float) -> "float | None":
    """c when grad equals c * reference (c != 1), else None."""
    grad, reference = grad.detach().double(), reference.detach().double()
    if not (grad.isfinite().all() and reference.isfinite().all()):
        return None
    c = float((grad * reference).sum() / (reference * reference).sum())
    if abs(c - 1) < 1e-3 or abs(c) < 1e-3 or not torch.allclose(grad, c * reference, atol=atol, rtol=rtol):
        return None
    return c


def _scaled(wrong: "list[str]", grads: dict, learning: dict, *, atol: float, rtol: float) -> str:
    """The hint when every wrong gradient is the reference's times the same constant; else ""."""
    factors = [_factor(grads[name], learning[name], atol=atol, rtol=rtol) for name in wrong]
    if any(c is None for c in factors) or max(factors) - min(factors) > 1e-3 * max(abs(c) for c in factors):
        return ""
    c = factors[0]
    shown = f"{c:.4g}"
    inverse = 1 / c
    if abs(inverse - round(inverse)) < 1e-3 and abs(round(inverse)) > 1:
        shown += f" (1/{round(inverse)})"
    if len(wrong) == 1:
        hint = (f"The gradient of {wrong[0]} is {shown} times the reference's: the forward multiplies {wrong[0]}, "
                f"or the term it is in, by {shown}.")
    else:
        hint = (f"Each of these gradients is {shown} times the reference's: the forward multiplies the term they are "
                f"in by {shown}.")
    note_recognised(hint)
    return hint
