"""One step of beam search, for one prompt: from the live beams to the next ones.

Beam search keeps num_beams live sequences ("beams") with their scores, the sum of the
log-probabilities of their generated tokens. One step, Hugging Face's rules:
1. every beam b and token t make a candidate, scored scores[b] + log_probs[b, t];
2. keep the 2 * num_beams best candidates, best first (torch.topk over beams x vocabulary,
   flattened beam-major: beam = index // d_vocab, token = index % d_vocab);
3. a candidate is finished if its token is eos_token_id or this is the last step
   (is_last_step), but only if it ranks among the first num_beams of those candidates (a
   candidate further down that ends is not finished: it is dropped);
4. the next live beams are the num_beams best candidates that did not end (to pick them, add
   -1e9 to the scores of the candidates that ended, in step 3 before the rank rule, and take
   torch.topk again; the live scores keep that -1e9, which only matters if no better candidate
   is left).
Why 2 * num_beams? So that num_beams candidates that did not end remain even if some end.

Return all 2 * num_beams candidates, in topk's order, with their raw scores and the finished
mask: the caller keeps the best finished ones (the pool) as Hugging Face does, by one more topk
over the pool and the candidates side by side, which needs them all, in this order, so that
equal scores come out in the same order.

Ties: wherever scores are equal, torch.topk's order decides, in every one of these steps. Use
torch.topk (not a sort, not a loop) on exactly these tensors to break ties as Hugging Face does.

Scores stay raw sums here: the length penalty is the caller's business. The scores returned
keep the dtype of `scores` + `log_probs`.
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
    Int[Tensor, "candidates seq+1"],
    Float[Tensor, " candidates"],
    Bool[Tensor, " candidates"],
]:
    """(next live tokens, their scores, the 2 * num_beams candidates, their raw scores, which of them
    finished), as described above."""
    raise NotImplementedError
