"""The attention pattern: scores turned into weights.

Each query distributes one unit of attention over the keys: a softmax over the key axis.
After the causal mask, future keys get weight 0 and each row sums to 1.
"""
from jaxtyping import Float
from torch import Tensor


def attention_pattern(
    scores: Float[Tensor, "batch n_heads query_pos key_pos"],
) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
    """Softmax of the (masked) scores over the key axis.

    returns: pattern[b, h, i, j] >= 0, with pattern[b, h, i, :].sum() == 1.
    Must stay finite for large scores and for rows where every score is finfo.min.
    """
    return scores.softmax(dim=-1)
