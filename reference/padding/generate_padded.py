"""Generation from prompts of different lengths, in one left-padded batch.

parts.generate's loop, with the padding carried along:
- each step runs parts.padded_forward(model, tokens, attention_mask) on every token so far and
  takes the logits of the last position: with left padding it is every row's last real token;
- the next token comes from parts.sample_next_token (the options pass through), with the whole
  sequence so far as `tokens`, padding included: Hugging Face's repetition penalty counts the
  pad token of a padded row too, and so does this one (that is what matches its tokens);
- the new token is real: the attention mask grows by a column of ones at every step.

Stopping: after max_new_tokens, or once every row has produced an end token. eos_token_id is
one id or a list of ids (any of them ends a row). A finished row keeps getting pad_token_id
appended, which defaults to eos_token_id (the first, for a list) as in Hugging Face's
generate(input_ids, attention_mask=..., pad_token_id=...). Its mask keeps growing with ones, as
Hugging Face's does: nothing reads a finished row any more.

The whole result must fit in the context: prompt_len + max_new_tokens > n_ctx (prompt_len
counts the padding columns) raises ValueError before the model runs.

With do_sample=True there is no top-k unless you pass top_k: Hugging Face's generate() uses
top_k=50 by default, so pass top_k=0 to it (or top_k=50 here) to compare the two.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts


def generate_padded(
    model: nn.Module,
    prompt: Int[Tensor, "batch prompt_len"],
    attention_mask: Int[Tensor, "batch prompt_len"],
    max_new_tokens: int,
    *,
    eos_token_id: "int | list[int] | None" = None,
    pad_token_id: "int | None" = None,
    **options,
) -> Int[Tensor, "batch total_len"]:
    """The padded prompts followed by up to max_new_tokens new tokens per row."""
    batch, prompt_len = prompt.shape
    if prompt_len + max_new_tokens > model.cfg.n_ctx:
        raise ValueError(f"{prompt_len} prompt tokens + {max_new_tokens} new ones exceed n_ctx={model.cfg.n_ctx}")
    ends = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if pad_token_id is None and ends:
        pad_token_id = ends[0]
    ends = torch.tensor(ends, dtype=prompt.dtype, device=prompt.device)
    tokens, mask = prompt, attention_mask
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = parts.padded_forward(model, tokens, mask)[:, -1, :]
        next_token = parts.sample_next_token(logits, tokens, **options)
        if len(ends):
            next_token = next_token.masked_fill(finished, pad_token_id)
            finished = finished | torch.isin(next_token, ends)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        if len(ends) and finished.all():
            break
    return tokens
