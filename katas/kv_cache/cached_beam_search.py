"""Beam search through the cache: parts.beam_search's results, one new token per beam per step.

The search itself is parts.beam_search's (same arguments, same results, read its docstring):
per prompt, num_beams beams, parts.ban_repeated_ngrams, parts.beam_step, the pool of finished
sequences (num_beams slots merged with the candidates by one torch.topk, so that exact ties come
out in Hugging Face's order), the length penalty and the stopping rules. What changes is how the log-probabilities
are computed: per prompt, a parts.KVCache with one row per beam; the first step runs the
num_beams copies of the prompt through parts.cached_forward, every later step only the last
token of each beam.

The catch: parts.beam_step reorders the beams. New beam i extends some old beam j (its
"parent"), whose row of the cache holds the keys and values of new beam i's tokens so far.
Before the next forward pass, reorder the cache so that row i holds its parent's row:
cache.reorder(parents). beam_step does not return the parents, but they can be found: new
beam i's tokens without its last one equal its parent's tokens. (Several old beams may hold
the same tokens, say the copies of the prompt at the first step; then any of them will do,
since equal tokens have equal keys and values.)

The whole result must fit in the context: prompt_len + max_new_tokens > model.cfg.n_ctx
raises harness.config.context_error(prompt_len, max_new_tokens, n_ctx) (a ValueError, with
the message of every generation function), before the model is run at all.

Refused, as ValueError: num_return_sequences > num_beams (Hugging Face's generate() refuses it
too), and 2 * num_beams > d_vocab, checked on the first log-probabilities, before any beam is
chosen: the first step then has fewer than 2 * num_beams real candidates, the -1e9 placeholder
beams get picked, and Hugging Face's search goes on differently (vocabulary 2, num_beams=4: it
returns [0, 1, 1, 1] where these rules stop a step earlier); this project refuses rather than
imitate that.

model: a parts.GPT2.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts
from harness.beams import pad_and_stack
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
