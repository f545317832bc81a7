"""Direct logit attribution: how much did each head and each MLP push the answer?

To ask "why does the model prefer token A to token B here?", look at the logit difference
logit[A] - logit[B] at the last position. Everything that reaches it passes through the final
layer norm and the unembedding, and with the model's final scale held fixed (as the logit lens
holds it) both are linear. So the difference splits into one term per residual component:

    component c contributes  centre(c) / scale * w  ·  (W_U[:, A] - W_U[:, B])

where centre(c) is c minus its own mean over d_model, scale is the final layer norm's scale
at that position, and w its weight. The terms sum to the model's own logit difference, up to
two constants that depend on no component: the layer norm's bias b and the unembedding's bias
b_U, each dotted with the same difference of directions.

"Direct" because it counts only what a component writes straight into the final residual;
a head that matters by feeding a later head shows up here as the later head's doing.

parts.residual_stack (your solution of the residual-stack kata) gives the components;
harness.lens.run_with_cache gives the scale: cache["ln_final.hook_scale"] (batch, pos, 1).
"""
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness import parts
from harness.lens import run_with_cache


def logit_diff_attribution(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], correct: Int[Tensor, " batch"], wrong: Int[Tensor, " batch"]
) -> Float[Tensor, "component batch"]:
    """Each residual component's direct contribution to logit[correct] - logit[wrong] at the last
    position of each row, in the order of harness.lens.component_labels."""
    raise NotImplementedError
