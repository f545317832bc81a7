"""The attention mask of a padded batch: causal, and blind to padding.

Prompts of different lengths share one batch by padding the short ones on the LEFT: every
row's last real token is then at the last position, where the next token is read for every
row at once. `attention_mask` (batch, key_pos) says which positions hold a real token (1) and
which hold padding (0), as Hugging Face's tokenizer returns it:

    tokens          [[ pad,  pad,  "Hi", "!" ],      attention_mask  [[0, 0, 1, 1],
                     ["How", "are", "you", "?" ]]                     [1, 1, 1, 1]]

Query i may attend to key j only if j is not in its future (the causal mask) AND key j is a
real token of the same row. Every other score becomes torch.finfo(scores.dtype).min.

The queries may be fewer than the keys: they are then the LAST query_pos of the key_pos
positions (query i sits at position key_pos - query_pos + i, as with a cache). With
query_pos == key_pos this is the causal mask with the padded keys masked as well.

A padding position's query has no real key to look at: its whole row is masked. Filled with
a finite number that row stays finite (its softmax is uniform; nobody reads its output). With
-inf it would be NaN, and a NaN does not stay put: in the next layer that position's value is
NaN, and 0 weight * NaN = NaN reaches every real token of the row.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def apply_padding_mask(
    scores: Float[Tensor, "batch n_heads query_pos key_pos"],
    attention_mask: Int[Tensor, "batch key_pos"],
) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
    """Mask the scores of future keys and of padded keys.

    scores: scores[b, h, i, j] is query i's score for key j; the queries are the last query_pos positions.
    attention_mask: 1 where a position holds a real token, 0 where it holds padding.
    returns: a new tensor, equal to scores where key j is neither in query i's future nor padding,
    and torch.finfo(scores.dtype).min elsewhere. Leave `scores` itself unchanged.
    """
    raise NotImplementedError
