"""The causal mask: no peeking at the future.

GPT-2 predicts token i+1 from tokens 0..i, so query i may only attend to keys 0..i. Before
the softmax, every score of a later key is replaced by the most negative finite number of
the scores' dtype, torch.finfo(dtype).min, so that it gets (almost exactly) zero weight.

Why not -inf? A row of -inf scores would make the softmax 0/0 = NaN, and multiplying a mask
of zeros by -inf is NaN too (0 * -inf). A finite fill avoids both.
"""
import torch
from jaxtyping import Float
from torch import Tensor


def apply_causal_mask(
    scores: Float[Tensor, "batch n_heads query_pos key_pos"],
) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
    """Mask the scores of future keys.

    scores: attention scores with query_pos == key_pos; scores[b, h, i, j] is query i's score for key j.
    returns: a new tensor, equal to scores where j <= i and torch.finfo(scores.dtype).min where j > i.
    Leave `scores` itself unchanged.
    """
    query_pos, key_pos = scores.shape[-2:]
    future = torch.triu(torch.ones(query_pos, key_pos, dtype=torch.bool, device=scores.device), diagonal=1)
    return scores.masked_fill(future, torch.finfo(scores.dtype).min)
