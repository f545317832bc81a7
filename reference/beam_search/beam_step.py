"""One step of beam search, for one prompt: from the live beams to the next ones.

Greedy search keeps one sequence; beam search keeps num_beams of them alive ("beams"), each
scored by the sum of its generated tokens' log-probabilities (the log of its probability). Every
beam b and token t make a candidate, beam b extended by t, scored scores[b] + log_probs[b, t].
Which candidates go on?

- The best ones, but some candidates end: their token is eos_token_id, or this is the last step
  (is_last_step). A sequence that ended cannot be extended: it leaves the beams, offered to the
  caller as finished, and the beams are refilled from the next best candidates that did not end.
  So a step looks at the 2 * num_beams best candidates: even if num_beams of them end, num_beams
  remain to go on.
- A candidate that ends is finished only if it ranks among the first num_beams of those
  2 * num_beams (one further down would not have been a beam: it is dropped).

Returns, in this order:
- the next beams' tokens (num_beams rows, one token longer), best first, and their scores;
- their parents: parents[i] is the index of the beam that new beam i extends. Whatever was kept
  per beam (a cache of its keys and values) follows the beams through it;
- the 2 * num_beams candidates, best first, their raw scores (the length penalty is the caller's
  business), and which of them finished: the caller's pool of finished sequences takes them all.
Scores keep the dtype of scores + log_probs.

Matching Hugging Face exactly (where scores are equal): the order is torch.topk's. Take the
candidates with one torch.topk over the flattened (beams x vocabulary) scores (beam = index //
d_vocab, token = index % d_vocab) and the next beams with a second torch.topk over the
candidates' scores plus -1e9 on those that ended, not a sort or a boolean mask. The next beams'
scores carry that -1e9 too (it shows only on the last step, where every candidate ends).
"""
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

FINISHED = -1.0e9  # added to the score of a candidate that ended, so that it cannot stay live


def beam_step(
    tokens: Int[Tensor, "beams seq"],
    scores: Float[Tensor, " beams"],
    log_probs: Float[Tensor, "beams d_vocab"],
    *,
    eos_token_id: "int | None",
    is_last_step: bool = False,
) -> tuple[
    Int[Tensor, "beams seq+1"],
    Float[Tensor, " beams"],
    Int[Tensor, " beams"],
    Int[Tensor, "candidates seq+1"],
    Float[Tensor, " candidates"],
    Bool[Tensor, " candidates"],
]:
    """(next beams' tokens, their scores, their parents, the 2 * num_beams candidates, their raw
    scores, which of them finished), as described above."""
    num_beams, d_vocab = log_probs.shape
    candidate_scores, flat = torch.topk((scores[:, None] + log_probs).flatten(), 2 * num_beams)
    beam, token = flat // d_vocab, flat % d_vocab
    candidates = torch.cat([tokens[beam], token[:, None]], dim=1)
    ends = (token == eos_token_id) if eos_token_id is not None else torch.zeros_like(token, dtype=torch.bool)
    ends = ends | is_last_step
    finished = ends & (torch.arange(2 * num_beams, device=ends.device) < num_beams)
    live = torch.topk(candidate_scores + ends * FINISHED, num_beams).indices
    live_scores = candidate_scores[live] + ends[live].to(candidate_scores.dtype) * FINISHED  # bool * float would be float32
    return candidates[live], live_scores, beam[live], candidates, candidate_scores, finished
