"""Blocking repeated n-grams, beam by beam (Hugging Face's no_repeat_ngram_size).

An n-gram is n consecutive tokens. With size n, no n-gram may appear twice in a sequence:
if the last n - 1 tokens of a beam already appeared earlier in that same beam followed by
token t, then t is banned for that beam (its log-probability becomes -inf). Each beam looks at
its own tokens only (prompt included): a prefix seen in another beam bans nothing. Nothing is
banned while a beam is shorter than n tokens. With n = 1, every token already seen is banned.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def ban_repeated_ngrams(
    log_probs: Float[Tensor, "beams d_vocab"], tokens: Int[Tensor, "beams seq"], n: int
) -> Float[Tensor, "beams d_vocab"]:
    """log_probs with -inf wherever the next token would repeat one of its beam's n-grams."""
    raise NotImplementedError
