"""Evaluation: the loss on held-out windows that training never sees.

A falling training loss can mean learning or memorising; the loss on held-out text tells
them apart. Evaluating must not change the model:
- model.eval() switches layers such as dropout to their inference behaviour;
- torch.no_grad() builds no graph (faster, less memory, and no stray .grad);
- afterwards the model goes back to the mode it was in (model.training says which),
  or training would go on in eval mode: a bug that shows up only as a worse model.

Go through the windows in order, batch_size at a time (windows.split), and return the mean
loss over every window. The last batch may be smaller, so weight each batch's loss by its
number of windows: the mean of the batch means would count its windows more.
"""
import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts


def evaluate(model: nn.Module, windows: Int[Tensor, "n_windows n_ctx"], batch_size: int) -> float:
    """The mean next-token loss over all windows, in eval mode and without gradients; the model's mode is restored."""
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in windows.split(batch_size):
            total += parts.cross_entropy_loss(model(batch), batch).item() * len(batch)
    model.train(was_training)
    return total / len(windows)
