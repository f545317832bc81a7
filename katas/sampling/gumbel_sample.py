"""Sampling without a softmax: the Gumbel-max trick.

To draw token t with probability softmax(logits)[t], add independent Gumbel noise
g = -log(-log(u)), u uniform in (0, 1), to every logit and take the argmax. No softmax, no
normalisation, no cumulative sums: adding a constant to all logits changes nothing, and -inf
logits are never chosen. Draw u from the `generator` you are given (never from the global
random state), so that a seed reproduces the draw.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def sample_with_gumbel(logits: Float[Tensor, "batch d_vocab"], generator: torch.Generator) -> Int[Tensor, " batch"]:
    """One token per row, distributed as softmax(logits), drawn with `generator`."""
    raise NotImplementedError
