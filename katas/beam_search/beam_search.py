"""Beam search: the num_beams most likely continuations, as Hugging Face's generate(num_beams=k).

For each prompt of the batch on its own:
- start with num_beams copies of the prompt; beam 0 scores 0, the others -1e9 (so the first
  step does not pick the same token num_beams times);
- each step: log-probabilities = log_softmax of the model's last logits, in float32 whatever the
  model's dtype (as Hugging Face does; the scores returned are float32); ban repeated n-grams
  (parts.ban_repeated_ngrams) when no_repeat_ngram_size > 0; then parts.beam_step
  (is_last_step on the max_new_tokens-th step);
- a finished candidate scores sum of log-probs / (generated tokens, EOS included, prompt
  excluded) ** length_penalty; keep the best num_beams of them ("the pool"), as Hugging Face
  does: the pool is num_beams slots, each a sequence and a score, all starting empty at -1e9
  (an empty slot holds the prompt alone: where every continuation was banned and nothing ever
  finished, the prompt is what comes back, at -1e9, as Hugging Face returns it).
  After each step, put the pool's scores and the 2 * num_beams candidates' scores side by side,
  pool first: torch.cat([pool_scores, candidate_scores / length ** length_penalty + -1e9 on
  every candidate that did not finish]), and keep the slots that torch.topk(..., num_beams)
  picks, in its order. The pool is full when all its slots hold finished sequences. Why not
  sort a list? Equal scores: topk orders ties its own way, and only the same topk on the same
  tensor puts them in Hugging Face's order;
- stop after max_new_tokens; or, with early_stopping=True, once the pool is full; or,
  with early_stopping=False, once the pool is full and the best live beam's score divided by
  (tokens generated so far) ** length_penalty cannot beat (is <=) the pool's worst score
  (from then on nothing enters the pool); with early_stopping="never", the same, but divided by
  max_new_tokens ** length_penalty when length_penalty > 0 (the best length a live beam could
  still reach: Hugging Face's "never" heuristic; with length_penalty <= 0 it is False's rule).
  Beware: "never" is a true value in Python, so test `early_stopping is True`. With
  num_beams=1, beam search is greedy search (Hugging Face runs greedy search then): whatever
  early_stopping says, the first finished sequence ends it;
- return the first num_return_sequences slots of the pool (topk's order: best first), with
  their scores. Shorter sequences are padded with eos_token_id up to the longest one returned for the batch.

Refused, as ValueError: num_return_sequences > num_beams (Hugging Face's generate() refuses it
too), and 2 * num_beams > d_vocab, checked on the first log-probabilities, before any beam is
chosen: the first step then has fewer than 2 * num_beams real candidates, the -1e9 placeholder
beams get picked, and Hugging Face's search goes on differently (vocabulary 2, num_beams=4: it
returns [0, 1, 1, 1] where these rules stop a step earlier); this project refuses rather than
imitate that.

Errors up front: when the model knows its context length (a parts.GPT2 has model.cfg.n_ctx),
a prompt_len + max_new_tokens that exceeds it raises harness.config.context_error(prompt_len,
max_new_tokens, n_ctx) before the model runs. A model without a cfg is not checked.

model: any callable from tokens (batch, seq) to logits (batch, seq, d_vocab).
"""
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import parts
from harness.beams import pad_and_stack
from harness.config import context_error

NEVER = -1.0e9


def beam_search(
    model: Callable[[Tensor], Tensor],
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
    """Sequences (batch * num_return_sequences rows, prompt included) and their scores."""
    raise NotImplementedError

