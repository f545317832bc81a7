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
    if num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences ({num_return_sequences}) has to be smaller or equal to num_beams ({num_beams})")
    if prompt.shape[1] + max_new_tokens > model.cfg.n_ctx:
        raise context_error(prompt.shape[1], max_new_tokens, model.cfg.n_ctx)
    weight = next(model.parameters())
    results = []
    for row in prompt:
        cache = parts.KVCache(model.cfg, num_beams, device=weight.device, dtype=weight.dtype)
        tokens = row.repeat(num_beams, 1)
        unseen = tokens
        scores = torch.full((num_beams,), NEVER, device=prompt.device)
        scores[0] = 0.0
        pool: list = [row] * num_beams  # the finished sequences, best first; an empty slot holds the prompt
        pool_scores = torch.full((num_beams,), NEVER, device=prompt.device)
        pool_finished = torch.zeros(num_beams, dtype=torch.bool, device=prompt.device)
        for step in range(1, max_new_tokens + 1):
            with torch.no_grad():
                log_probs = parts.cached_forward(model, unseen, cache)[:, -1, :].float().log_softmax(dim=-1)
            if 2 * num_beams > log_probs.shape[-1]:
                raise ValueError(f"num_beams={num_beams} needs a vocabulary of at least {2 * num_beams} tokens, "
                                 f"not {log_probs.shape[-1]}: beam search takes 2 * num_beams candidates a step")
            if no_repeat_ngram_size > 0:
                log_probs = parts.ban_repeated_ngrams(log_probs, tokens, no_repeat_ngram_size)
            next_tokens, scores, candidates, candidate_scores, finished = parts.beam_step(
                tokens, scores, log_probs, eos_token_id=eos_token_id, is_last_step=step == max_new_tokens
            )
            merged_scores = torch.cat([pool_scores, candidate_scores / step**length_penalty + ~finished * NEVER])
            keep = torch.topk(merged_scores, num_beams).indices
            entries = pool + list(candidates)
            pool = [entries[i] for i in keep.tolist()]
            pool_scores, pool_finished = merged_scores[keep], torch.cat([pool_finished, finished])[keep]
            full = bool(pool_finished.all())
            if full and (early_stopping is True or num_beams == 1):  # one beam: greedy search, ended by its EOS
                break
            best_length = max_new_tokens if early_stopping == "never" and length_penalty > 0 else step
            if full and scores[0] / best_length**length_penalty <= pool_scores.min():
                break  # the best live beam cannot enter the pool any more
            # New beam i's parent is the old beam whose tokens are its own without the last one.
            same_prefix = (next_tokens[:, None, :-1] == tokens[None, :, :]).all(dim=-1)
            cache.reorder(same_prefix.int().argmax(dim=1))
            tokens, unseen = next_tokens, next_tokens[:, -1:]
        results.append(list(zip(pool_scores.tolist(), pool))[:num_return_sequences])
    return pad_and_stack(results, eos_token_id)
