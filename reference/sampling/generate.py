"""Generation: the loop that turns a model into a writer.

Start from the prompt. At each step run the model on every token so far, take the logits at
the last position, choose the next token with parts.sample_next_token (the options pass
through), and append it. Stop after max_new_tokens, or once every row has produced
eos_token_id. A row that has finished keeps getting eos_token_id appended (as padding) while
the others go on: the result is rectangular. This is Hugging Face's generate() for one beam.

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
    eos_token_id: "int | None" = None,
    **options,
) -> Int[Tensor, "batch total_len"]:
    """The prompt followed by up to max_new_tokens new tokens per row."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and prompt.shape[1] + max_new_tokens > cfg.n_ctx:
        raise context_error(prompt.shape[1], max_new_tokens, cfg.n_ctx)
    tokens = prompt
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(tokens)[:, -1, :]
        next_token = parts.sample_next_token(logits, tokens, **options)
        if eos_token_id is not None:
            next_token = next_token.masked_fill(finished, eos_token_id)
            finished = finished | (next_token == eos_token_id)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if finished.all():
            break
    return tokens
