"""Multi-head attention, with GPT-2's weights and biases.

Each of n_heads heads projects every position to a query, a key and a value (size d_head)
with its own W_Q, W_K, W_V and biases b_Q, b_K, b_V. The heads attend causally, each in its
own subspace, and W_O projects every head's result back to d_model; the heads' projections
are summed and b_O is added once.

Use the earlier katas through `parts`: parts.attention_scores, parts.apply_causal_mask,
parts.attention_pattern and parts.attend_to_values (the reference ones while this is graded).
"""
import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from harness import Config, parts


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_Q = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_K = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_V = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_O = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_head, cfg.d_model))
        self.b_Q = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        self.b_K = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        self.b_V = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head))
        self.b_O = nn.Parameter(torch.zeros(cfg.d_model))
        for weight in (self.W_Q, self.W_K, self.W_V, self.W_O):
            nn.init.normal_(weight, std=cfg.init_range)

    def forward(
        self, normalized_resid_pre: Float[Tensor, "batch posn d_model"]
    ) -> Float[Tensor, "batch posn d_model"]:
        """Causal multi-head self-attention.

        normalized_resid_pre: the residual stream after the block's first layer norm.
        returns: sum over heads of z[b, p, h] @ W_O[h], plus b_O, where z is each head's
        weighted sum of values (q, k, v all include their biases).
        """
        raise NotImplementedError
