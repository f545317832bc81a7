"""Unembedding: from the last residual stream back to scores over the vocabulary.

After the final layer norm, each position holds a d_model vector. The unembedding maps it
to one logit per vocabulary entry; a softmax of the logits (later, not here) gives the
model's probabilities for the next token.
"""
import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from harness import Config


class Unembed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        nn.init.normal_(self.W_U, std=cfg.init_range)
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))

    def forward(
        self, normalized_resid_final: Float[Tensor, "batch posn d_model"]
    ) -> Float[Tensor, "batch posn d_vocab"]:
        """Logits for every position.

        normalized_resid_final: the residual stream after the final layer norm.
        returns: logits[b, p, t] = sum over d of x[b, p, d] * W_U[d, t], plus b_U[t].
        Logits, not probabilities: no softmax.
        """
        logits = einops.einsum(
            normalized_resid_final, self.W_U, "batch posn d_model, d_model d_vocab -> batch posn d_vocab"
        )
        return logits + self.b_U
