"""One step of beam search, for one prompt: from the live beams to the next ones.

Beam search keeps num_beams live sequences ("beams") with their scores, the sum of the
log-probabilities of their generated tokens. One step, Hugging Face's rules:
1. every beam b and token t make a candidate, scored scores[b] + log_probs[b, t];
2. keep the 2 * num_beams best candidates (torch.topk over beams x vocabulary, flattened
   beam-major, so ties go as topk orders them);
3. a candidate is finished if its token is eos_token_id or this is the last step
   (is_last_step), but it is returned as finished only if it ranks among the first num_beams
   of those candidates (a finished candidate further down is dropped);
4. the next live beams are the num_beams best candidates that are not finished (to pick them,
   add -1e9 to the finished candidates' scores and take torch.topk again).
Why 2 * num_beams? So that num_beams unfinished candidates remain even if some finish.

Scores stay raw sums here: the length penalty is the caller's business.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor

FINISHED = -1.0e9  # added to a finished candidate's score so that it cannot stay live


def beam_step(
    tokens: Int[Tensor, "beams seq"],
    scores: Float[Tensor, " beams"],
    log_probs: Float[Tensor, "beams d_vocab"],
    *,
    eos_token_id: "int | None",
    is_last_step: bool = False,
) -> tuple[
    Int[Tensor, "beams seq+1"], Float[Tensor, " beams"], Int[Tensor, "finished seq+1"], Float[Tensor, " finished"]
]:
    """(next live tokens, their scores, finished tokens, their raw scores), as described above."""
    num_beams, d_vocab = log_probs.shape
    candidate_scores, flat = torch.topk((scores[:, None] + log_probs).flatten(), 2 * num_beams)
    beam, token = flat // d_vocab, flat % d_vocab
    candidates = torch.cat([tokens[beam], token[:, None]], dim=1)
    ends = (token == eos_token_id) if eos_token_id is not None else torch.zeros_like(token, dtype=torch.bool)
    ends = ends | is_last_step
    finished = ends & (torch.arange(2 * num_beams, device=ends.device) < num_beams)
    live = torch.topk(candidate_scores + ends * FINISHED, num_beams).indices
    live_scores = candidate_scores[live] + ends[live].to(candidate_scores.dtype) * FINISHED  # bool * float would be float32
    return candidates[live], live_scores, candidates[finished], candidate_scores[finished]
