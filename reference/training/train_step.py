"""One step of gradient descent on one batch.

    logits = model(tokens)                      forward
    loss   = cross_entropy_loss(logits, tokens) how wrong the next-token predictions are
    loss.backward()                             every parameter's .grad = d loss / d parameter
    optimizer.step()                            move the parameters against their gradients
    optimizer.zero_grad()                       clear .grad for the next step

The last line matters: backward() *adds* to .grad, so without it each step would use the
sum of every gradient so far. Return the loss detached from the graph (loss.detach()): a
loss kept with its graph keeps every activation of the step alive in memory.

model may be wrapped in torch.nn.parallel.DistributedDataParallel: then backward() also
averages the gradients across processes, and nothing here changes.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, tokens: Int[Tensor, "batch posn"]) -> Float[Tensor, ""]:
    """Forward, loss, backward, optimizer step, zeroed gradients; the loss before the step, detached."""
    loss = parts.cross_entropy_loss(model(tokens), tokens)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach()
