"""The model's forward pass with a cache: prefill the prompt, then decode a few tokens at a time.

The first call (an empty cache) runs the whole prompt, the "prefill", and fills the cache.
Each later call runs only the tokens the model has not seen, usually one per step. For them:

    residual = embed(new tokens) + W_pos[cache.length .. cache.length + new - 1]
    for each block (its layer index matters): the pre-norm block of parts.TransformerBlock, with
        parts.cached_attention(block.attn, block.ln1(residual), cache, layer) as its attention
    cache.advance(new), once every layer has written its keys and values
    logits = unembed(ln_final(residual))

Positions are offset by what is cached: the new tokens are not at positions 0, 1, ...
Going past the context length is an error, raised before anything is computed or written:
cache.length + new > n_ctx raises ValueError and leaves the cache as it was.

model: a parts.GPT2 (embed, pos_embed, blocks, ln_final, unembed); its weights are used as they are.
"""
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts


def cached_forward(
    model: nn.Module,
    tokens: Int[Tensor, "batch new"],
    cache: "parts.KVCache",
) -> Float[Tensor, "batch new d_vocab"]:
    """Logits for the new tokens, which come right after the cache.length tokens already cached."""
    start, new = cache.length, tokens.shape[1]
    if start + new > model.cfg.n_ctx:
        raise ValueError(f"{start} cached + {new} new positions exceed the context length n_ctx={model.cfg.n_ctx}")
    residual = model.embed(tokens) + model.pos_embed.W_pos[start : start + new]
    for layer, block in enumerate(model.blocks):
        residual = residual + parts.cached_attention(block.attn, block.ln1(residual), cache, layer)
        residual = residual + block.mlp(block.ln2(residual))
    cache.advance(new)
    return model.unembed(model.ln_final(residual))
