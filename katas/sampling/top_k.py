"""Top-k filtering: sample only among the k most likely tokens.

Every logit strictly below the k-th largest logit of its row becomes -inf, so that the softmax
gives it probability 0. Ties: a token whose logit equals the k-th largest is kept, so more
than k tokens survive when there are ties at the boundary (Hugging Face's rule). If k is at
least the vocabulary size, nothing is filtered. k must be positive.
"""
import torch
from jaxtyping import Float
from torch import Tensor


def top_k_filter(logits: Float[Tensor, "batch d_vocab"], k: int) -> Float[Tensor, "batch d_vocab"]:
    """Keep the logits >= the k-th largest of each row; set the others to -inf (a new tensor).

    k larger than d_vocab keeps every logit; raises ValueError unless k > 0 (k=0 is not "no filter" here).
    """
    raise NotImplementedError
