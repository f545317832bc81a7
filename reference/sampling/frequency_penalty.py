"""Frequency penalty: discouraging tokens the more often they have appeared.

For every token t, subtract penalty * (the number of times t appears in the sequence so far)
from its logit. "The sequence so far" is everything passed in `tokens`, the prompt included,
and each row of the batch counts its own tokens only. A token that never appeared keeps its
logit. (OpenAI's API has this penalty; Hugging Face has only the multiplicative repetition
penalty, a separate kata.)
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def apply_frequency_penalty(
    logits: Float[Tensor, "batch d_vocab"], tokens: Int[Tensor, "batch seq"], penalty: float
) -> Float[Tensor, "batch d_vocab"]:
    """logits[b, t] - penalty * count of t in tokens[b], as a new tensor."""
    counts = torch.zeros_like(logits).scatter_add_(1, tokens, torch.ones_like(tokens, dtype=logits.dtype))
    return logits - penalty * counts
