"""The model's forward pass on a padded batch.

parts.GPT2's forward knows nothing of padding: it would give a left-padded row the positions
of its columns, and let its real tokens attend to the padding. Here each block is written out,
as in kv_cache/cached_forward, so that the attention mask reaches every attention layer:

    positions = parts.positions_from_mask(attention_mask)
    residual  = embed(tokens) + W_pos[positions]             each row's own positions
    for each block:
        residual += block.attn's computation on block.ln1(residual), with the padding mask
        residual += block.mlp(block.ln2(residual))
    logits = unembed(ln_final(residual))

That attention is parts.Attention's (q, k, v with their biases, parts.attention_scores, the
mask, parts.attention_pattern, parts.attend_to_values, then W_O and b_O), with
parts.apply_padding_mask(scores, attention_mask) in place of parts.apply_causal_mask(scores).

What it gives: each row's logits at its real positions are those of that row's real tokens
run alone through the model, whatever the padding holds and however much of it there is. The
logits at padding positions mean nothing, but they are finite (no NaN).

model: a parts.GPT2 (embed, pos_embed, blocks, ln_final, unembed); its weights are used as they are.
"""
import einops
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts


def padded_forward(
    model: nn.Module,
    tokens: Int[Tensor, "batch posn"],
    attention_mask: Int[Tensor, "batch posn"],
) -> Float[Tensor, "batch posn d_vocab"]:
    """Logits of a (left-)padded batch; attention_mask is 1 on real tokens, 0 on padding."""
    raise NotImplementedError
