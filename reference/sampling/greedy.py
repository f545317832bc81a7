"""Greedy decoding: always take the most likely next token.

The model's logits at the last position score every possible next token. Greedy decoding
picks the highest score. It is deterministic and often repetitive, and it is what Hugging
Face's generate(do_sample=False) does with one beam.
"""
from jaxtyping import Float, Int
from torch import Tensor


def greedy_next_token(logits: Float[Tensor, "batch d_vocab"]) -> Int[Tensor, " batch"]:
    """The index of the largest logit of each row; on a tie, the lowest index."""
    return logits.argmax(dim=-1)
