"""The weighted sum of values: what each query reads.

Each head also turns every position into a value vector. Query i's output, per head, is the
average of the value vectors weighted by its row of the attention pattern:

    z[b, i, h, :] = sum over j of pattern[b, h, i, j] * v[b, j, h, :]
"""
import einops
from jaxtyping import Float
from torch import Tensor


def attend_to_values(
    pattern: Float[Tensor, "batch n_heads query_pos key_pos"],
    v: Float[Tensor, "batch key_pos n_heads d_head"],
) -> Float[Tensor, "batch query_pos n_heads d_head"]:
    """Mix the values of each head with that head's attention pattern.

    returns: z[b, i, h] = sum_j pattern[b, h, i, j] * v[b, j, h], in the axis order
    (batch, query_pos, n_heads, d_head).
    """
    return einops.einsum(
        pattern, v, "batch n_heads query_pos key_pos, batch key_pos n_heads d_head -> batch query_pos n_heads d_head"
    )
