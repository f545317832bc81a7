"""Layer norm: keeping the residual stream's scale under control.

Each position's vector is normalised on its own: subtract its mean, divide by its standard
deviation, then scale by the learned w and shift by the learned b (both of size d_model).

    y = (x - mean(x)) / sqrt(var(x) + eps) * w + b

The mean and the variance are taken over the d_model axis only, and the variance is the
biased one (divide by d_model). eps (cfg.layer_norm_eps) sits inside the square root.
"""
import torch
from jaxtyping import Float
from torch import Tensor, nn

from harness import Config


class LayerNorm(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))

    def forward(self, residual: Float[Tensor, "batch posn d_model"]) -> Float[Tensor, "batch posn d_model"]:
        """Normalise each residual[b, p] over d_model, then scale by w and shift by b."""
        mean = residual.mean(dim=-1, keepdim=True)
        variance = residual.var(dim=-1, keepdim=True, unbiased=False)
        normalized = (residual - mean) / torch.sqrt(variance + self.cfg.layer_norm_eps)
        return normalized * self.w + self.b
