"""Token embedding: the first thing GPT-2 does to its input.

A token is an integer id in [0, d_vocab). The model cannot do arithmetic on ids, so it keeps
one learned vector of size d_model per vocabulary entry, the rows of W_E, and swaps each id
for its row. After this the whole model works on vectors.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import Config


class Embed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))
        nn.init.normal_(self.W_E, std=cfg.init_range)

    def forward(self, tokens: Int[Tensor, "batch posn"]) -> Float[Tensor, "batch posn d_model"]:
        """Swap every token id for its embedding.

        tokens: ids, tokens[b, p] is the token at position p of sequence b.
        returns: out[b, p] = W_E[tokens[b, p]], a vector of size d_model.
        Gradients must flow back into W_E: it is learned.
        """
        raise NotImplementedError
