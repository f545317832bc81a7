"""The key-value cache: what attention remembers between generation steps.

Without a cache, generating token t+1 reruns the model over all t tokens before it, although
the keys and values of those tokens have not changed: causal attention means a token's key and
value depend only on the tokens up to it. A cache keeps every layer's keys and values, so that
each step only computes those of the new tokens and appends them.

Layout (the same as Hugging Face's, per layer):

    keys[layer], values[layer]:  (batch, n_heads, n_ctx, d_head)

The memory for all n_ctx positions is allocated once (here, in __init__); `length` says how
many positions are filled, the same for every layer between two forward passes. One forward
pass over `new` tokens calls `update` once per layer, each writing positions
length .. length+new-1 of its layer, then calls `advance(new)` once. Writing in place into a
buffer allocated once is why the cache is fast: torch.cat on every step would copy the whole
cache every time.

Beam search reorders its beams every step: `reorder(beam_indices)` makes row i of the cache a
copy of row beam_indices[i], in every layer.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import Config


class KVCache:
    def __init__(self, cfg: Config, batch_size: int, *, device: "torch.device | str | None" = None,
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        shape = (cfg.n_layers, batch_size, cfg.n_heads, cfg.n_ctx, cfg.d_head)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions filled, in every layer

    def update(
        self,
        layer: int,
        new_keys: Float[Tensor, "batch n_heads new d_head"],
        new_values: Float[Tensor, "batch n_heads new d_head"],
    ) -> tuple[Float[Tensor, "batch n_heads total d_head"], Float[Tensor, "batch n_heads total d_head"]]:
        """Write the new keys and values of `layer` after its `length` cached ones; return all of them.

        Returns the keys and values of positions 0 .. length+new-1 of that layer (views of the
        cache, no copy). Does not change `length`: `advance` does, once every layer is updated.
        Raises ValueError, and writes nothing, if length + new would exceed n_ctx.
        """
        total = self.length + new_keys.shape[2]
        if total > self.cfg.n_ctx:
            raise ValueError(f"the cache holds {self.length} positions and {new_keys.shape[2]} more would make "
                             f"{total}, past the context length n_ctx={self.cfg.n_ctx}")
        self.keys[layer, :, :, self.length : total] = new_keys
        self.values[layer, :, :, self.length : total] = new_values
        return self.keys[layer, :, :, :total], self.values[layer, :, :, :total]

    def advance(self, new: int) -> None:
        """Count `new` more positions as cached, in every layer (after each layer's update).

        Raises ValueError, and changes nothing, if length + new would exceed n_ctx.
        """
        if self.length + new > self.cfg.n_ctx:
            raise ValueError(f"cannot advance {self.length} cached positions by {new}: n_ctx is {self.cfg.n_ctx}")
        self.length += new

    def reorder(self, beam_indices: Int[Tensor, " batch"]) -> None:
        """Row i of the cache becomes a copy of row beam_indices[i], in every layer."""
        filled = slice(0, self.length)
        self.keys[:, :, :, filled] = self.keys[:, beam_indices, :, filled]
        self.values[:, :, :, filled] = self.values[:, beam_indices, :, filled]
