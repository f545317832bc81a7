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
    raise NotImplementedError
