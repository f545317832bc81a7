"""Generation through the cache: the same tokens as parts.generate, far fewer computations.

parts.generate reruns the model over the whole sequence at every step. Here:
- make a parts.KVCache for the batch (on the model's device, in its dtype);
- the first step runs the whole prompt through parts.cached_forward (the prefill);
- every later step runs only the token chosen at the step before;
- the next token comes from the logits of the last position, through parts.sample_next_token
  (the options pass through), with the whole sequence so far as `tokens` for the penalties.

Everything else is parts.generate's, with the same options and the same errors:
- stop after max_new_tokens, or once every row has produced an eos id; eos_token_id may be one
  id or a list (any of them ends a row); a finished row keeps getting pad_token_id, or the
  (first) eos id when no pad_token_id is given;
- num_return_sequences=n: each prompt row repeated n times in a row (p0, p0, p1, p1, ... for n=2)
  and generated as one batch (the cache has a row for each); do_sample=False with
  num_return_sequences > 1 is a ValueError, raised before the model runs;
- no_repeat_ngram_size=n > 0: before each choice, parts.ban_repeated_ngrams bans the tokens that
  would repeat one of the row's n-grams, counted over the whole sequence so far (prompt included,
  not only the tokens the model sees this step); 0 bans nothing.

The whole result must fit in the context: prompt_len + max_new_tokens > n_ctx raises
harness.config.context_error(prompt_len, max_new_tokens, n_ctx) (a ValueError, with the message
of every generation function) before anything is generated (rather than failing, or going
wrong, half-way).

model: a parts.GPT2.
"""
import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts
from harness.config import context_error


def generate_with_cache(
    model: nn.Module,
    prompt: Int[Tensor, "batch prompt_len"],
    max_new_tokens: int,
    *,
    eos_token_id: "int | list[int] | None" = None,
    pad_token_id: "int | None" = None,
    num_return_sequences: int = 1,
    no_repeat_ngram_size: int = 0,
    **options,
) -> Int[Tensor, "returned total_len"]:
    """The prompt followed by up to max_new_tokens new tokens per row, as parts.generate returns them."""
    prompt_len = prompt.shape[1]
    if prompt_len + max_new_tokens > model.cfg.n_ctx:
        raise context_error(prompt_len, max_new_tokens, model.cfg.n_ctx)
    if num_return_sequences > 1 and not options.get("do_sample", True):
        raise ValueError(f"num_return_sequences={num_return_sequences} without sampling would repeat the same rows")
    eos = None if eos_token_id is None else torch.tensor(eos_token_id, device=prompt.device).flatten()
    pad = pad_token_id if pad_token_id is not None else (None if eos is None else int(eos[0]))
    tokens = prompt.repeat_interleave(num_return_sequences, dim=0)
    batch = tokens.shape[0]
    weight = next(model.parameters())
    cache = parts.KVCache(model.cfg, batch, device=weight.device, dtype=weight.dtype)
    unseen = tokens
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = parts.cached_forward(model, unseen, cache)[:, -1, :]
        if no_repeat_ngram_size > 0:
            logits = parts.ban_repeated_ngrams(logits, tokens, no_repeat_ngram_size)
        next_token = parts.sample_next_token(logits, tokens, **options)
        if eos is not None:
            next_token = next_token.masked_fill(finished, pad)
            finished = finished | torch.isin(next_token, eos)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        unseen = next_token[:, None]
        if finished.all():
            break
    return tokens
