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
    positions = parts.positions_from_mask(attention_mask)
    residual = model.embed(tokens) + model.pos_embed.W_pos[positions]
    to_heads = "batch posn d_model, n_heads d_model d_head -> batch posn n_heads d_head"
    for block in model.blocks:
        attn, x = block.attn, block.ln1(residual)
        q = einops.einsum(x, attn.W_Q, to_heads) + attn.b_Q
        k = einops.einsum(x, attn.W_K, to_heads) + attn.b_K
        v = einops.einsum(x, attn.W_V, to_heads) + attn.b_V
        scores = parts.apply_padding_mask(parts.attention_scores(q, k), attention_mask)
        z = parts.attend_to_values(parts.attention_pattern(scores), v)
        heads = einops.einsum(z, attn.W_O, "batch posn n_heads d_head, n_heads d_head d_model -> batch posn d_model")
        residual = residual + heads + attn.b_O
        residual = residual + block.mlp(block.ln2(residual))
    return model.unembed(model.ln_final(residual))
