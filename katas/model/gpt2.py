"""The whole GPT-2: token ids in, next-token logits out.

    residual = embed(tokens) + pos_embed(tokens)
    residual = block(residual) for each of the n_layers blocks, in order
    logits   = unembed(ln_final(residual))

Logits at position p score the token that comes after position p.
"""
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import Config, parts


class GPT2(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = parts.Embed(cfg)
        self.pos_embed = parts.PosEmbed(cfg)
        self.blocks = nn.ModuleList([parts.TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = parts.LayerNorm(cfg)
        self.unembed = parts.Unembed(cfg)

    def forward(self, tokens: Int[Tensor, "batch posn"]) -> Float[Tensor, "batch posn d_vocab"]:
        """Logits for every position: logits[b, p] scores the token after tokens[b, p]."""
        raise NotImplementedError
