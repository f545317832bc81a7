"""The forward pass of a padded batch, with a cache: padded prompts, generated fast.

kv_cache/cached_forward and padding/padded_forward together. The cache holds cache.length
positions already; `tokens` are the `new` ones after them, and `attention_mask` covers them
all, cached and new: (batch, cache.length + new), 1 on real tokens, 0 on the left padding.
For the new tokens:

    positions = parts.positions_from_mask(attention_mask), its last `new` columns
    residual  = embed(tokens) + W_pos[positions]
    for each block (its layer index matters):
        q, k, v of the new tokens, in the cache's layout (batch, n_heads, new, d_head), biases included
        keys, values = cache.update(layer, k, v)        every position so far
        scores = q . keys / sqrt(d_head), then parts.apply_padding_mask(scores, attention_mask):
                 the new queries are the last `new` positions, which is what it assumes
        z = parts.attention_pattern(scores) @ values; residual += z through W_O, plus b_O
        residual += block.mlp(block.ln2(residual))
    cache.advance(new), once, after the last block
    logits = unembed(ln_final(residual))

A padded row's position does not follow from cache.length: its new token's position is its
count of real tokens so far, which is why the whole mask is needed, not only the new part.

Errors, raised before anything is computed or written: an attention_mask that does not cover
cache.length + new positions, or cache.length + new > n_ctx: ValueError, the cache unchanged.

model: a parts.GPT2; cache: a parts.KVCache with one row per row of the batch.
"""
import math

import einops
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts


def padded_cached_forward(
    model: nn.Module,
    tokens: Int[Tensor, "batch new"],
    attention_mask: Int[Tensor, "batch total"],
    cache: "parts.KVCache",
) -> Float[Tensor, "batch new d_vocab"]:
    """Logits for the new tokens of a padded batch, which come right after the cache.length cached ones."""
    start, new = cache.length, tokens.shape[1]
    if attention_mask.shape[1] != start + new:
        raise ValueError(f"attention_mask covers {attention_mask.shape[1]} positions, not the {start} cached + {new} new ones")
    if start + new > model.cfg.n_ctx:
        raise ValueError(f"{start} cached + {new} new positions exceed the context length n_ctx={model.cfg.n_ctx}")
    positions = parts.positions_from_mask(attention_mask)[:, start:]
    residual = model.embed(tokens) + model.pos_embed.W_pos[positions]
    to_heads = "batch new d_model, n_heads d_model d_head -> batch n_heads new d_head"
    for layer, block in enumerate(model.blocks):
        attn, x = block.attn, block.ln1(residual)
        q = einops.einsum(x, attn.W_Q, to_heads) + attn.b_Q[:, None, :]
        k = einops.einsum(x, attn.W_K, to_heads) + attn.b_K[:, None, :]
        v = einops.einsum(x, attn.W_V, to_heads) + attn.b_V[:, None, :]
        keys, values = cache.update(layer, k, v)
        scores = parts.apply_padding_mask(q @ keys.transpose(-1, -2) / math.sqrt(attn.cfg.d_head), attention_mask)
        z = parts.attention_pattern(scores) @ values
        heads = einops.einsum(z, attn.W_O, "batch n_heads new d_head, n_heads d_head d_model -> batch new d_model")
        residual = residual + heads + attn.b_O
        residual = residual + block.mlp(block.ln2(residual))
    cache.advance(new)
    return model.unembed(model.ln_final(residual))
