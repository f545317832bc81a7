"""Generation from a padded batch through the cache: generate_padded's tokens, fast.

parts.generate_padded's loop, with kv_cache/cached_generate's way of feeding the model:
- make a parts.KVCache for the batch (on the model's device, in its dtype);
- the first step runs the whole padded prompt through parts.padded_cached_forward with its
  attention mask (the prefill); every later step runs only the token chosen at the step
  before, with the mask grown by a column of ones FIRST: the mask always covers every
  position so far, the new one included;
- the next token comes from the logits of the last position; the penalties count each row's
  real tokens only (parts.apply_repetition_penalty, then parts.apply_frequency_penalty, row
  by row, as in parts.generate_padded), then parts.sample_next_token (the other options pass
  through) with the whole sequence so far.
Stopping, eos_token_id (one id or a list) and pad_token_id (defaults to the first eos id) are
those of parts.generate_padded, and so are the tokens: the same as Hugging Face's
generate(input_ids, attention_mask=..., use_cache=True).

The whole result must fit in the context: prompt_len + max_new_tokens > n_ctx (prompt_len
counts the padding) raises harness.config.context_error(prompt_len, max_new_tokens, n_ctx)
before the model runs.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts
from harness.config import context_error


def generate_padded_with_cache(
    model: nn.Module,
    prompt: Int[Tensor, "batch prompt_len"],
    attention_mask: Int[Tensor, "batch prompt_len"],
    max_new_tokens: int,
    *,
    eos_token_id: "int | list[int] | None" = None,
    pad_token_id: "int | None" = None,
    repetition_penalty: float = 1.0,
    frequency_penalty: float = 0.0,
    **options,
) -> Int[Tensor, "batch total_len"]:
    """The padded prompts followed by up to max_new_tokens new tokens per row, as parts.generate_padded returns them."""
    batch, prompt_len = prompt.shape
    if prompt_len + max_new_tokens > model.cfg.n_ctx:
        raise context_error(prompt_len, max_new_tokens, model.cfg.n_ctx)
    ends = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if pad_token_id is None and ends:
        pad_token_id = ends[0]
    ends = torch.tensor(ends, dtype=prompt.dtype, device=prompt.device)
    weight = next(model.parameters())
    cache = parts.KVCache(model.cfg, batch, device=weight.device, dtype=weight.dtype)
    tokens, mask, unseen = prompt, attention_mask, prompt
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = parts.padded_cached_forward(model, unseen, mask, cache)[:, -1, :]
        if repetition_penalty != 1.0 or frequency_penalty != 0.0:
            rows = []
            for row in range(batch):
                row_logits, real = logits[row : row + 1], tokens[row : row + 1, mask[row] == 1]
                if repetition_penalty != 1.0:
                    row_logits = parts.apply_repetition_penalty(row_logits, real, repetition_penalty)
                if frequency_penalty != 0.0:
                    row_logits = parts.apply_frequency_penalty(row_logits, real, frequency_penalty)
                rows.append(row_logits)
            logits = torch.cat(rows)
        next_token = parts.sample_next_token(logits, tokens, **options)
        if len(ends):
            next_token = next_token.masked_fill(finished, pad_token_id)
            finished = finished | torch.isin(next_token, ends)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        unseen = next_token[:, None]
        if len(ends) and finished.all():
            break
    return tokens
