"""Generation from prompts of different lengths, in one left-padded batch.

parts.generate's loop, with the padding carried along:
- each step runs parts.padded_forward(model, tokens, attention_mask) on every token so far and
  takes the logits of the last position: with left padding it is every row's last real token;
- the penalties count a row's real tokens only, never its padding: Hugging Face's
  generate() skips the left padding in its repetition penalty (transformers 5), since padding
  is not text the model wrote. Given the whole rectangular `tokens`, the penalty functions
  would count the padding too: they must see each row's real tokens, and nothing else;
- then parts.sample_next_token chooses the next token (the other options pass through);
- the new token is real: the attention mask grows by a column of ones at every step.

Stopping: after max_new_tokens, or once every row has produced an end token. eos_token_id is
one id or a list of ids (any of them ends a row). A finished row keeps getting pad_token_id
appended, which defaults to eos_token_id (the first, for a list) as in Hugging Face's
generate(input_ids, attention_mask=..., pad_token_id=...). Its mask keeps growing with ones, as
Hugging Face's does: nothing reads a finished row any more.

The whole result must fit in the context: prompt_len + max_new_tokens > n_ctx (prompt_len
counts the padding columns) raises harness.config.context_error(prompt_len, max_new_tokens,
n_ctx), the ValueError of every generation function, before the model runs.

With do_sample=True there is no top-k unless you pass top_k: Hugging Face's generate() uses
top_k=50 by default, so pass top_k=0 to it (or top_k=50 here) to compare the two.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts
from harness.config import context_error


def generate_padded(
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
    """The padded prompts followed by up to max_new_tokens new tokens per row."""
    batch, prompt_len = prompt.shape
    if prompt_len + max_new_tokens > model.cfg.n_ctx:
        raise context_error(prompt_len, max_new_tokens, model.cfg.n_ctx)
    ends = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if pad_token_id is None and ends:
        pad_token_id = ends[0]
    ends = torch.tensor(ends, dtype=prompt.dtype, device=prompt.device)
    tokens, mask = prompt, attention_mask
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = parts.padded_forward(model, tokens, mask)[:, -1, :]
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
        if len(ends) and finished.all():
            break
    return tokens
