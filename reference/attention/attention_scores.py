"""Attention scores: how much each query cares about each key, per head.

Every head has its own queries and keys, vectors of size d_head. The score of query i for
key j is their dot product divided by sqrt(d_head): without that scale the dot products grow
with d_head and the softmax that follows saturates.

    scores[b, h, i, j] = q[b, i, h, :] . k[b, j, h, :] / sqrt(d_head)
"""
import math

import einops
from jaxtyping import Float
from torch import Tensor


def attention_scores(
    q: Float[Tensor, "batch query_pos n_heads d_head"],
    k: Float[Tensor, "batch key_pos n_heads d_head"],
) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
    """Scaled dot products of every query with every key, head by head.

    q: queries, q[b, i, h] is query i of head h.
    k: keys, k[b, j, h] is key j of head h.
    returns: scores[b, h, i, j], query i's score for key j in head h (note the axis order).
    """
    d_head = q.shape[-1]
    scores = einops.einsum(
        q, k, "batch query_pos n_heads d_head, batch key_pos n_heads d_head -> batch n_heads query_pos key_pos"
    )
    return scores / math.sqrt(d_head)
