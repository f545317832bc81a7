"""The MLP: the part of each block that works on every position on its own.

Up-project each position's vector from d_model to d_mlp (4 * d_model in GPT-2), apply
GELU (parts.gelu_new), and down-project back to d_model. Both projections have a bias.

    mlp(x) = gelu_new(x @ W_in + b_in) @ W_out + b_out
"""
import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from harness import Config, parts


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        nn.init.normal_(self.W_in, std=cfg.init_range)
        nn.init.normal_(self.W_out, std=cfg.init_range)

    def forward(self, normalized_resid_mid: Float[Tensor, "batch posn d_model"]) -> Float[Tensor, "batch posn d_model"]:
        """gelu_new(x @ W_in + b_in) @ W_out + b_out, for every position."""
        raise NotImplementedError
