"""Properties checked without an oracle: causality, batch independence, inputs left unchanged."""
import torch
from torch import Tensor

from harness.testing.asserts import check_tensor, check_unchanged


@torch.no_grad()
def check_causal(run, inputs: Tensor, changed: Tensor, position: int, *, kata: str, what: str) -> None:
    """`changed` differs from `inputs` at `position` only: no output before it may change."""
    __tracebackhide__ = True
    check_tensor(run(changed)[:, :position], run(inputs)[:, :position], kata=kata,
                 what=f"{what} before position {position}, after changing the input at position {position},",
                 atol=1e-5, rtol=1e-5,
                 hint="An earlier position saw a later one: is the causal mask applied, to the right axis?")


@torch.no_grad()
def check_batch_independent(run, inputs: Tensor, *, kata: str, what: str) -> None:
    """Running a batch gives what running each sequence alone gives."""
    __tracebackhide__ = True
    alone = torch.cat([run(inputs[i : i + 1]) for i in range(inputs.shape[0])])
    check_tensor(run(inputs), alone, kata=kata, what=f"{what} for a batch, against each sequence run alone,",
                 atol=1e-5, rtol=1e-5, hint="Sequences in a batch must not mix: no sum or mean over the batch axis.")


@torch.no_grad()
def check_inputs_unchanged(run, *inputs: Tensor, kata: str, what: str) -> None:
    """Calling `run` leaves every input as it was."""
    __tracebackhide__ = True
    before = [x.clone() for x in inputs]
    run(*inputs)
    for number, (old, new) in enumerate(zip(before, inputs), start=1):
        check_unchanged(old, new, kata=kata, what=f"{what}'s input {number}" if len(inputs) > 1 else f"{what}'s input")
