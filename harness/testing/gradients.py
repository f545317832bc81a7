"""Gradients of a module under test against the reference's."""
import pytest
import torch
from torch import Tensor, nn

from harness.testing import stuck
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn


def check_gradients(module: nn.Module, expected: nn.Module, *inputs, kata: str, what: str, seed: int = 0,
                    atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Backward through the module under test and the reference (same weights, same inputs): every
    parameter that learns in the reference gets a gradient, non-zero, and equal to the reference's.

    The loss is a seeded random weighting of the output (a plain .sum() gives a layer norm's
    scale no gradient at all). Parameters whose reference gradient is zero (attention's b_K: a
    constant added to every key does not change the softmax) are not checked.
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
    for name, param in theirs.items():
        if param.grad is None or not param.grad.abs().max() > 1e-6:
            continue
        grad = mine[name].grad
        if grad is None:
            pytest.fail(f"No gradient reached {name}: {what} must stay differentiable with respect to it "
                        f"(no .detach(), .data, torch.no_grad() or a copy made with torch.tensor).\n{advice}", pytrace=False)
        if not grad.abs().max() > 0:
            pytest.fail(f"The gradient of {name} is zero everywhere: {name} does not take part in {what}.\n{advice}",
                        pytrace=False)
        check_tensor(grad, param.grad, kata=kata, what=f"The gradient of {name}", atol=atol, rtol=rtol,
                     hint=f"The forward uses {name} differently from the reference (or only part of it).")
