"""Attention with a cache: only the new tokens are computed, they attend to everything so far.

The cache holds `cache.length` positions already. The new tokens sit at positions
cache.length, cache.length+1, ...: new query i is at absolute position cache.length + i and may
attend to keys 0 .. cache.length + i, the cached ones and the new ones up to itself. So the
causal mask is offset: with one new token it masks nothing; with several, the new tokens
still must not see each other's future.

    q, k, v of the new tokens only        (batch, n_heads, new, d_head), biases included
    keys, values = cache.update(layer, k, v)   every position so far: (batch, n_heads, total, d_head)
    scores = q . keys / sqrt(d_head), masked where key position > query position
    z = softmax(scores) @ values, then W_O and b_O as in parts.Attention

The result equals parts.Attention's output at the new positions, had it been run on the whole
sequence. Beware: torch's scaled_dot_product_attention(is_causal=True) aligns its mask to the
top-left corner, which is wrong here whenever there is a cache.

attn: a parts.Attention, whose weights (W_Q, b_Q, ..., W_O, b_O) you use.
"""
import math

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from harness import parts


def cached_attention(
    attn: nn.Module,
    normalized_resid_pre: Float[Tensor, "batch new d_model"],
    cache: "parts.KVCache",
    layer: int,
) -> Float[Tensor, "batch new d_model"]:
    """Multi-head attention of the new positions, reading and extending layer `layer` of the cache."""
    x = normalized_resid_pre
    q = to_heads(x, attn.W_Q, attn.b_Q)
    k = to_heads(x, attn.W_K, attn.b_K)
    v = to_heads(x, attn.W_V, attn.b_V)
    keys, values = cache.update(layer, k, v)
    scores = q @ keys.transpose(-1, -2) / math.sqrt(attn.cfg.d_head)
    new, total = scores.shape[-2:]
    query_position = torch.arange(total - new, total, device=x.device)[:, None]
    key_position = torch.arange(total, device=x.device)[None, :]
    scores = scores.masked_fill(key_position > query_position, torch.finfo(scores.dtype).min)
    z = scores.softmax(dim=-1) @ values
    out = einops.einsum(z, attn.W_O, "batch n_heads new d_head, n_heads d_head d_model -> batch new d_model")
    return out + attn.b_O


def to_heads(
    x: Float[Tensor, "batch new d_model"], W: Float[Tensor, "n_heads d_model d_head"], b: Float[Tensor, "n_heads d_head"]
) -> Float[Tensor, "batch n_heads new d_head"]:
    """x @ W + b for every head, in the cache's layout.

    The same as einops.einsum(x, W, "batch new d_model, n_heads d_model d_head -> batch n_heads
    new d_head") + b[:, None, :], but one matrix product per head that reads W where it lies:
    the einsum first copies W into a (d_model, n_heads * d_head) matrix, and with one new token
    per step that copy costs as much as the product itself.
    """
    batch, new, d_model = x.shape
    per_head = x.reshape(1, batch * new, d_model) @ W  # (n_heads, batch * new, d_head)
    return per_head.unflatten(1, (batch, new)).transpose(0, 1) + b[:, None, :]
