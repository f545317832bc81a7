"""Naming the heads a detector found.

A detector gives every head a score; what a person wants is the list of heads that do the
thing: "1.2 and 1.3 are induction heads". Interpretability papers name a head by its layer and
its index in the layer, "5.1" for layer 5's head 1 (so the induction heads reported for GPT-2
small are 5.1, 5.5, 6.9, 7.2, 7.10).

A threshold decides. The strongest head comes first: that is the one to look at first.
"""
from jaxtyping import Float
from torch import Tensor


def heads_above(scores: Float[Tensor, "layer head"], threshold: float) -> list[str]:
    """The heads whose score is above `threshold`, as "layer.head" strings, highest score first
    (on equal scores, the earlier layer, then the lower head, first)."""
    raise NotImplementedError
