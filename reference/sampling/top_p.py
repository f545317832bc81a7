"""Top-p (nucleus) filtering: sample only from the smallest likely set covering probability p.

Hugging Face's rule, which this kata follows exactly:
1. sort each row's logits in ascending order and take the softmax of the sorted row;
2. walk up the cumulative probabilities: a token is removed when the cumulative probability
   up to and including it is <= 1 - p (so the tokens removed hold at most 1 - p together);
3. the most likely token is always kept, whatever p is;
4. removed tokens get the logit -inf, the others keep theirs.
For probabilities 0.5, 0.3, 0.2 and p = 0.8: 0.2 <= 0.2 is removed, 0.5 and 0.3 are kept.
p is in [0, 1]; p = 1 removes only tokens whose probability is exactly 0.
"""
import torch
from jaxtyping import Float
from torch import Tensor


def top_p_filter(logits: Float[Tensor, "batch d_vocab"], p: float) -> Float[Tensor, "batch d_vocab"]:
    """Set to -inf the logits outside each row's nucleus of probability p (a new tensor)."""
    sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= 1 - p
    remove_sorted[:, -1] = False  # always keep the most likely token
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))
