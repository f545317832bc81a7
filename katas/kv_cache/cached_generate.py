"""Generation through the cache: the same tokens as parts.generate, far fewer computations.

parts.generate reruns the model over the whole sequence at every step. Here:
- make a parts.KVCache for the batch (on the model's device, in its dtype);
- the first step runs the whole prompt through parts.cached_forward (the prefill);
- every later step runs only the token chosen at the step before;
- the next token comes from the logits of the last position, through parts.sample_next_token
  (the options pass through), with the whole sequence so far as `tokens` for the penalties.
Stopping and EOS padding are those of parts.generate: stop after max_new_tokens, or once every
row has produced eos_token_id; a finished row keeps getting eos_token_id.

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
    eos_token_id: "int | None" = None,
    **options,
) -> Int[Tensor, "batch total_len"]:
    """The prompt followed by up to max_new_tokens new tokens per row, as parts.generate returns them."""
    raise NotImplementedError
