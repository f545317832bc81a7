"""The logit lens: what would the model say if it stopped after layer l?

The residual stream after each layer lives in the same space as the final one, so it can be
read the same way: through the final layer norm and the unembedding. Doing that for every layer
shows a prediction forming: early layers often guess little more than the current token's
usual successors, later ones the right answer.

One subtlety makes the lens exact at the end: apply the final layer norm as the model did,
with the scale the model computed from the final residual (cache["ln_final.hook_scale"]),
not a scale recomputed from each layer's residual. The layer norm is then the same linear map
for every layer (centre, divide by that scale, times w, plus b), and the last reading is the
model's own logits.

Read the activations with harness.lens: `logits, cache = run_with_cache(model, tokens)`;
cache["resid_pre", layer] is the residual that block `layer` reads, cache["resid_post", layer]
the one it leaves.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness.lens import run_with_cache


def logit_lens(model: nn.Module, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer batch pos d_vocab"]:
    """Logits read from the residual stream before each block and after the last one
    (n_layers + 1 readings), each through the final layer norm with the model's final scale,
    then the unembedding. The last reading equals the model's logits."""
    _, cache = run_with_cache(model, tokens)
    n_layers = len(model.blocks)
    residuals = torch.stack([cache["resid_pre", layer] for layer in range(n_layers)] + [cache["resid_post", n_layers - 1]])
    centred = residuals - residuals.mean(dim=-1, keepdim=True)
    normalized = centred / cache["ln_final.hook_scale"] * model.ln_final.w + model.ln_final.b
    return normalized @ model.unembed.W_U + model.unembed.b_U
