"""Head detectors: which heads look at the previous token, at an earlier copy of the current
token, or at the token after that copy?

Feed the model a random sequence of `half` tokens followed by the same tokens again. On the
second half, three kinds of heads show up in the attention patterns:

- a previous-token head attends from each position to the one just before it;
- a duplicate-token head attends from a token in the second half to the same token in the first
  half, `half` positions back;
- an induction head attends to the token that came *after* that earlier copy, `half - 1`
  positions back: it is how a model continues a sequence it has seen before ("Mr and Mrs
  Dursley ... Mrs" -> "Dursley"). An induction head needs a previous-token head in an earlier
  layer: the earlier copy's successor is found by the note "the token before me was X" that
  the previous-token head left there.

Each score is the mean attention a head pays to its target: previous-token over every position
but the first (which has no previous token), the other two over the second half's positions.
Random tokens make the scores honest: in natural text, a head attending to the previous
token might just be attending to common words.

harness.lens.run_with_cache gives the patterns: cache["pattern", layer] is (batch, head, query, key).
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness.lens import run_with_cache


def detector_scores(model: nn.Module, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "detector layer head"]:
    """On tokens that are a sequence repeated twice (pos = 2 * half), each head's previous-token,
    duplicate-token and induction scores, in that order along the first axis."""
    raise NotImplementedError
