"""From one long corpus of token ids to training windows of n_ctx tokens.

The model reads at most n_ctx tokens at once, so the corpus is cut into windows. A window
of n_ctx tokens trains n_ctx - 1 predictions (its last token has no target inside it). To
train every prediction of the corpus, "this token is followed by that one", consecutive
windows overlap by one token: each starts on the token the previous one ended with.

    stride = n_ctx - 1;  window i = corpus[i * stride : i * stride + n_ctx]

The corpus rarely divides evenly. Rather than drop its tail, the last window is moved back
so that it ends exactly on the last token (it then overlaps its neighbour a little more).
No window runs past the end of the corpus, and no padding is made up. The result has
ceil((len(corpus) - 1) / stride) windows. A corpus shorter than n_ctx, or n_ctx < 2 (a
window with no prediction in it), is a ValueError.
"""
import math

import torch
from jaxtyping import Int
from torch import Tensor


def make_windows(corpus: Int[Tensor, " n_tokens"], n_ctx: int) -> Int[Tensor, "n_windows n_ctx"]:
    """Windows overlapping by one token, the last one ending on the corpus's last token."""
    if n_ctx < 2 or len(corpus) < n_ctx:
        raise ValueError(f"need n_ctx >= 2 and a corpus of at least n_ctx tokens; got n_ctx={n_ctx}, {len(corpus)} tokens")
    stride = n_ctx - 1
    n_windows = math.ceil((len(corpus) - 1) / stride)
    starts = (torch.arange(n_windows, device=corpus.device) * stride).clamp(max=len(corpus) - n_ctx)
    return corpus[starts[:, None] + torch.arange(n_ctx, device=corpus.device)]
