"""Repetition penalty, as Hugging Face applies it (the CTRL paper's penalty).

Every token that appears anywhere in the row's sequence so far (prompt included), however
often, has its logit pushed towards "less likely" by a factor `penalty` (> 0; 1 means off):
a positive logit is divided by the penalty, a negative one multiplied by it. Tokens that never
appeared keep their logits. Each row of the batch uses its own tokens only.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor


def apply_repetition_penalty(
    logits: Float[Tensor, "batch d_vocab"], tokens: Int[Tensor, "batch seq"], penalty: float
) -> Float[Tensor, "batch d_vocab"]:
    """Penalise, once each, the logits of the tokens that appear in each row of `tokens`."""
    seen = torch.gather(logits, 1, tokens)
    penalised = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, tokens, penalised)
