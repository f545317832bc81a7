"""Ablation: what does the model lose without a head?

The surest test of what a head does is to take it away and see what breaks. Ablating a head
replaces its output, z for that head (before W_O), with something that carries no information
about the input:

- zero-ablation replaces it with zeros. Simple, but zero may be a value the head never
  produces, so the model can break for reasons unrelated to what the head computes;
- mean-ablation replaces it with the head's average z over the batch and every position of
  the same run (heads ablated in earlier layers already changed it): what
  the head "usually" says, with the information about this input removed.

Measure what is lost on repeated random sequences (a sequence of `half` tokens, then the same
tokens again): the loss on the repeated half, where only looking back helps. Without its
induction heads, the model can no longer predict tokens it has seen, and that loss rises a lot.
The loss counts the predictions of tokens[:, half + 1:] (from logits at positions half ..
2 * half - 2): the first token of the second half cannot be predicted from the first half.

harness.lens.run_with_hooks(model, tokens, fwd_hooks=[(name, fn)]) runs the model with fn
applied to the activation `name`; fn(activation, hook) returns the tensor to use instead.
The heads' outputs are "blocks.{layer}.attn.hook_z", (batch, pos, head, d_head).
"""
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness.lens import run_with_hooks


def repeated_half_loss_ablated(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], heads: list[tuple[int, int]], ablation: str = "zero"
) -> Float[Tensor, ""]:
    """The mean cross-entropy of the repeated half's predictable tokens when the heads in `heads`
    ((layer, head) pairs) are ablated together, with "zero" or "mean" ablation (any other is a
    ValueError)."""
    if ablation not in ("zero", "mean"):
        raise ValueError(f"ablation must be 'zero' or 'mean', got {ablation!r}")

    def ablate(z: Tensor, hook, head: int) -> Tensor:
        z = z.clone()
        z[:, :, head] = 0.0 if ablation == "zero" else z[:, :, head].mean(dim=(0, 1))
        return z

    hooks = [(f"blocks.{layer}.attn.hook_z", lambda z, hook, head=head: ablate(z, hook, head)) for layer, head in heads]
    logits = run_with_hooks(model, tokens, fwd_hooks=hooks)
    half = tokens.shape[1] // 2
    predicted = logits[:, half:-1]
    return F.cross_entropy(predicted.flatten(0, 1), tokens[:, half + 1:].flatten())
