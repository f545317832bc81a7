"""The transformer block: attention and MLP, each added to the residual stream.

GPT-2 is pre-norm: each sub-layer reads a layer-normed copy of the residual stream and adds
its output back, so the stream itself is never normalised inside a block.

    resid_mid  = resid_pre + attn(ln1(resid_pre))
    resid_post = resid_mid + mlp(ln2(resid_mid))

The parts are parts.LayerNorm, parts.Attention and parts.MLP (built for you in __init__).
"""
from jaxtyping import Float
from torch import Tensor, nn

from harness import Config, parts


class TransformerBlock(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.ln1 = parts.LayerNorm(cfg)
        self.attn = parts.Attention(cfg)
        self.ln2 = parts.LayerNorm(cfg)
        self.mlp = parts.MLP(cfg)

    def forward(self, resid_pre: Float[Tensor, "batch posn d_model"]) -> Float[Tensor, "batch posn d_model"]:
        """One pre-norm block: the residual stream in, the residual stream out."""
        raise NotImplementedError
