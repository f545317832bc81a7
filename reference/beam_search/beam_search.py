"""Beam search: the num_beams most likely continuations, as Hugging Face's generate(num_beams=k).

Greedy search commits to the likeliest token at each step, yet the likeliest sequence may start
with a less likely token. Beam search keeps num_beams sequences alive ("beams") and moves them
all a step at a time with parts.beam_step. Each prompt of the batch is searched on its own:

- The beams start as num_beams copies of the prompt, beam 0 scoring 0 and the others -1e9: were
  they all at 0, the first step would pick the best token num_beams times, once per copy.
- Each step: the model's log-probabilities of the next token (log_softmax of its last logits),
  repeated n-grams banned (parts.ban_repeated_ngrams) when no_repeat_ngram_size > 0, then
  parts.beam_step (is_last_step on the max_new_tokens-th step: every beam ends there).
- Sequences that finish go to a pool of the num_beams best ones (harness.beams.FinishedPool).
  Why a length penalty: a sum of log-probabilities only falls as a sequence grows, so raw sums
  favour whatever ends first. The pool compares finished sequences by their sum divided by
  (generated tokens, EOS included, prompt excluded) ** length_penalty: 1 is the mean
  log-probability per token, more favours longer sequences, 0 is the raw sum. The scores you
  give the pool are normalised so.
- When to stop: after max_new_tokens, or sooner, once further steps cannot change the pool: it
  is full and no live beam can beat its worst sequence. How sure to be is early_stopping's
  (True: a full pool is enough; False: a heuristic; "never": only when certain);
  pool.is_done(the best live beam's score, the tokens generated so far, this step's included)
  applies Hugging Face's rules.
- The result: each prompt's num_return_sequences best finished sequences (prompt included) and
  their scores, stacked for the batch by harness.beams.pad_and_stack.

Refused up front, as ValueError: num_return_sequences > num_beams (as Hugging Face refuses it),
and, when the model knows its context length (model.cfg.n_ctx, as a parts.GPT2 does), a
prompt_len + max_new_tokens beyond it: harness.config.context_error(prompt_len,
max_new_tokens, n_ctx). A model without a cfg is not checked.

Matching Hugging Face exactly: log-probabilities in float32 whatever the model's dtype (the
scores returned are float32); and 2 * num_beams > d_vocab is refused (ValueError, on the first
step): with fewer real candidates than 2 * num_beams, Hugging Face's search takes the -1e9
copies of the prompt as candidates, which this project refuses to imitate.

model: any callable from tokens (batch, seq) to logits (batch, seq, d_vocab).
"""
from collections.abc import Callable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import parts
from harness.beams import FinishedPool, pad_and_stack
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
    if num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences ({num_return_sequences}) has to be smaller or equal to num_beams ({num_beams})")
    cfg = getattr(model, "cfg", None)
    if cfg is not None and prompt.shape[1] + max_new_tokens > cfg.n_ctx:
        raise context_error(prompt.shape[1], max_new_tokens, cfg.n_ctx)
    results = []
    for row in prompt:
        tokens = row.repeat(num_beams, 1)
        scores = torch.full((num_beams,), NEVER, device=prompt.device)
        scores[0] = 0.0
        pool = FinishedPool(row, num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                            max_new_tokens=max_new_tokens)
        for step in range(1, max_new_tokens + 1):
            with torch.no_grad():
                log_probs = model(tokens)[:, -1, :].float().log_softmax(dim=-1)
            if 2 * num_beams > log_probs.shape[-1]:
                raise ValueError(f"num_beams={num_beams} needs a vocabulary of at least {2 * num_beams} tokens, "
                                 f"not {log_probs.shape[-1]}: beam search takes 2 * num_beams candidates a step")
            if no_repeat_ngram_size > 0:
                log_probs = parts.ban_repeated_ngrams(log_probs, tokens, no_repeat_ngram_size)
            tokens, scores, _, candidates, candidate_scores, finished = parts.beam_step(
                tokens, scores, log_probs, eos_token_id=eos_token_id, is_last_step=step == max_new_tokens
            )
            pool.add(candidates, candidate_scores / step**length_penalty, finished)
            if pool.is_done(scores[0], step):
                break
        results.append(pool.best(num_return_sequences))
    return pad_and_stack(results, eos_token_id)
