"""Generation: the loop that turns a model into a writer.

Start from the prompt. At each step run the model on every token so far, take the logits at
the last position, choose the next token with parts.sample_next_token (the options pass
through), and append it. Stop after max_new_tokens, or once every row has produced
eos_token_id. A row that has finished keeps getting eos_token_id appended (as padding) while
the others go on: the result is rectangular. This is Hugging Face's generate() for one beam.
Choose a token for every row, finished ones too, then overwrite the finished rows' with the
pad: sampling draws random numbers row by row, and a finished row left out would shift every
later row's draws (Hugging Face samples them all, so its tokens would differ from yours).

As Hugging Face's generate() does, eos_token_id may be a list: any of its ids ends a row. A
finished row gets pad_token_id appended, or the (first) eos id when no pad_token_id is given.
num_return_sequences=n samples n continuations of every prompt: each prompt row repeated n times
in a row (rows p0, p0, p1, p1, ... for n=2), then generated as one batch. Without sampling it
would give n identical rows, so do_sample=False with num_return_sequences > 1 is a ValueError
(Hugging Face refuses it too).

no_repeat_ngram_size=n > 0 forbids every row to repeat an n-gram of its own (prompt included, as
Hugging Face does): each step, parts.ban_repeated_ngrams sets the scores of the tokens that would
repeat one to -inf, before the next token is chosen. Hugging Face bans after its repetition
penalty and before temperature, top-k and top-p: the penalties leave -inf at -inf, so banning
on the logits first and then calling sample_next_token gives the same tokens. 0 bans nothing.

Errors up front: when the model knows its context length (a parts.GPT2 has model.cfg.n_ctx),
a prompt_len + max_new_tokens that exceeds it raises harness.config.context_error(prompt_len,
max_new_tokens, n_ctx) before the model runs (not half-way, deep inside the positional
embedding). A model without a cfg (any other callable) is not checked.

With do_sample=True no top-k is applied unless you pass top_k; Hugging Face's generate() uses
top_k=50 by default.

model: any callable from tokens (batch, seq) to logits (batch, seq, d_vocab).
"""
from collections.abc import Callable

import torch
from jaxtyping import Int
from torch import Tensor

from harness import parts
from harness.config import context_error


def generate(
    model: Callable[[Tensor], Tensor],
    prompt: Int[Tensor, "batch prompt_len"],
    max_new_tokens: int,
    *,
    eos_token_id: "int | list[int] | None" = None,
    pad_token_id: "int | None" = None,
    num_return_sequences: int = 1,
    no_repeat_ngram_size: int = 0,
    **options,
) -> Int[Tensor, "returned total_len"]:
    """The prompt followed by up to max_new_tokens new tokens per row (num_return_sequences rows per prompt)."""
    raise NotImplementedError
