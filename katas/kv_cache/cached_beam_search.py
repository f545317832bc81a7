"""Beam search through the cache: parts.beam_search's results, one new token per beam per step.

The search is parts.beam_search's (same arguments, same results: read its docstring): per
prompt, num_beams beams moved by parts.beam_step, parts.ban_repeated_ngrams, the pool of
finished sequences (harness.beams.FinishedPool), the length penalty and the stopping rules.
What changes is how the log-probabilities are computed: per prompt, a parts.KVCache with one
row per beam; the first step runs the num_beams copies of the prompt through
parts.cached_forward, every later step only the last token of each beam.

The catch: beam_step reorders the beams. New beam i extends old beam parents[i], and it is that
row of the cache that holds the keys and values of new beam i's tokens so far: row i may hold
another beam's past, or a beam that was dropped. Unless each row follows its beam before the
next forward pass, a beam's next token is computed from another beam's past.

The whole result must fit in the context: prompt_len + max_new_tokens > model.cfg.n_ctx
raises harness.config.context_error(prompt_len, max_new_tokens, n_ctx) (a ValueError, with
the message of every generation function), before the model is run at all. The other
refusals are parts.beam_search's: num_return_sequences > num_beams, 2 * num_beams > d_vocab.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts
from harness.beams import FinishedPool, pad_and_stack
from harness.config import context_error

NEVER = -1.0e9


def beam_search_with_cache(
    model: nn.Module,
    prompt: Int[Tensor, "batch prompt_len"],
    *,
    num_beams: int,
    max_new_tokens: int,
    eos_token_id: "int | None" = None,
    length_penalty: float = 1.0,
    early_stopping: "bool | str" = False,
    no_repeat_ngram_size: int = 0,
    num_return_sequences: int = 1,
) -> tuple[Int[Tensor, "returned total_len"], Float[Tensor, " returned"]]:
    """Sequences (batch * num_return_sequences rows, prompt included) and their scores, as parts.beam_search.

    Raises ValueError, before running the model, if prompt_len + max_new_tokens > model.cfg.n_ctx.
    """
    raise NotImplementedError
