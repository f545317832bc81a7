"""Next-token log-probabilities: how much probability the model gave to what came next.

The logits at position p score the token that comes *after* tokens[p]. So the logits of
positions 0 .. posn-2 are paired with the tokens at positions 1 .. posn-1: the prediction
and its target are one position apart. The last position predicts a token we do not have,
so it has no target and drops out: the result has one position fewer than the input.

    log_probs[b, p] = log_softmax(logits[b, p])[tokens[b, p + 1]]

Take the log-softmax over the vocabulary axis (not log(softmax(...)), which underflows to
-inf for very unlikely tokens), then pick the target's entry of each row.
"""
from jaxtyping import Float, Int
from torch import Tensor


def next_token_log_probs(
    logits: Float[Tensor, "batch posn d_vocab"], tokens: Int[Tensor, "batch posn"]
) -> Float[Tensor, "batch posn_minus_1"]:
    """log_probs[b, p]: the log-probability that logits[b, p] gave to tokens[b, p + 1]."""
    log_probs = logits[:, :-1].log_softmax(dim=-1)
    targets = tokens[:, 1:]
    return log_probs.gather(dim=-1, index=targets[..., None])[..., 0]
