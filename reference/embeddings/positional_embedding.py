"""Positional embedding: telling the model where each token is.

Attention on its own treats its input as a set: shuffle the tokens and each one sees the
same things. GPT-2 adds a learned vector per position, the rows of W_pos (one per position
up to n_ctx), to each token's embedding, so that "the cat" and "cat the" differ.
"""
import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import Config


class PosEmbed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))
        nn.init.normal_(self.W_pos, std=cfg.init_range)

    def forward(self, tokens: Int[Tensor, "batch posn"]) -> Float[Tensor, "batch posn d_model"]:
        """The positional embedding of every position in `tokens`.

        tokens: ids of shape (batch, posn), with posn <= n_ctx. Only their shape matters.
        returns: out[b, p] = W_pos[p], the same for every sequence b in the batch.
        """
        batch, posn = tokens.shape
        return einops.repeat(self.W_pos[:posn], "posn d_model -> batch posn d_model", batch=batch)
