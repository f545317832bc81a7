"""Blocking repeated n-grams, row by row (Hugging Face's no_repeat_ngram_size).

An n-gram is n consecutive tokens. With size n, no n-gram may appear twice in a sequence: if
the last n - 1 tokens of a row already appeared earlier in that same row followed by token t,
then t is banned for that row (its score becomes -inf, so it can be neither picked nor sampled).
Each row looks at its own tokens only, prompt included: a prefix seen in another row bans
nothing. Nothing is banned while a row is shorter than n tokens. With n = 1, every token already
seen is banned.

A row is whatever is being continued: one sequence of a batch in parts.generate (the scores are
its logits), one beam in parts.beam_search (the scores are its log-probabilities). Hugging Face
bans on the scores after the repetition penalty and before temperature, top-k and top-p, so a
banned token never takes one of top-k's k places.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def ban_repeated_ngrams(
    scores: Float[Tensor, "rows d_vocab"], tokens: Int[Tensor, "rows seq"], n: int
) -> Float[Tensor, "rows d_vocab"]:
    """scores with -inf wherever the next token would repeat one of its row's n-grams."""
    raise NotImplementedError
