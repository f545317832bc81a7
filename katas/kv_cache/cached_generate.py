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
    raise NotImplementedError
