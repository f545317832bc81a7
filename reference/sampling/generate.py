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
    cfg = getattr(model, "cfg", None)
    if cfg is not None and prompt.shape[1] + max_new_tokens > cfg.n_ctx:
        raise context_error(prompt.shape[1], max_new_tokens, cfg.n_ctx)
    if num_return_sequences > 1 and not options.get("do_sample", True):
        raise ValueError(f"num_return_sequences={num_return_sequences} without sampling would repeat the same rows")
    eos = None if eos_token_id is None else torch.tensor(eos_token_id, device=prompt.device).flatten()
    pad = pad_token_id if pad_token_id is not None else (None if eos is None else int(eos[0]))
    tokens = prompt.repeat_interleave(num_return_sequences, dim=0)
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(tokens)[:, -1, :]
        if no_repeat_ngram_size > 0:
            logits = parts.ban_repeated_ngrams(logits, tokens, no_repeat_ngram_size)
        next_token = parts.sample_next_token(logits, tokens, **options)
        if eos is not None:
            next_token = next_token.masked_fill(finished, pad)
            finished = finished | torch.isin(next_token, eos)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if finished.all():
            break
    return tokens
