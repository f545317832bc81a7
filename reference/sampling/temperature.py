"""Temperature: sharpening or flattening the next-token distribution.

Dividing the logits by a temperature T before the softmax changes how peaked it is: T < 1
sharpens it (towards greedy), T > 1 flattens it (towards uniform), T = 1 changes nothing.
T must be positive: T = 0 would divide by zero (use greedy decoding instead).
"""
from jaxtyping import Float
from torch import Tensor


def apply_temperature(logits: Float[Tensor, "batch d_vocab"], temperature: float) -> Float[Tensor, "batch d_vocab"]:
    """logits / temperature, as a new tensor. Raise ValueError unless temperature > 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return logits / temperature
