"""The residual stream, taken apart: every component that was added to it, one by one.

Each block reads the residual stream and adds to it; nothing else ever changes it. So the
final residual (what the final layer norm reads) is a plain sum of the pieces that were added:
the token and position embeddings, then in each layer what the attention added, and what the
MLP added. Attention's part splits further, because its output is a sum over heads:

    attn_out = sum over heads h of  z[:, :, h] @ W_O[h]   +  b_O

so each head's own contribution is its z through its own slice of W_O, and the bias b_O,
which belongs to no head, is a component of its own.

Taking the stream apart is what every later question rests on: which head wrote the direction
that made the model say "Paris"? With the pieces stacked, such questions are a dot product.

Read the activations with harness.lens: `logits, cache = run_with_cache(model, tokens)`, then
cache["hook_embed"], cache["z", layer] (batch, pos, head, d_head), cache["mlp_out", layer], ...
harness.lens.component_labels(n_layers, n_heads) names the components in the order wanted here.
"""
import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness.lens import run_with_cache


def residual_stack(model: nn.Module, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "component batch pos d_model"]:
    """Every component of the final residual stream on `tokens`, stacked in the order of
    harness.lens.component_labels: embed, pos_embed, then per layer each head's output, b_O and
    the MLP's output. They sum to what the final layer norm reads."""
    raise NotImplementedError
