"""Activation patching: which heads carry the information that decides the answer?

Ablation asks what breaks without a head; patching asks which heads are enough to fix a
broken input. Take two inputs that differ in one telling way: a clean one, where the model
gives the right answer, and a corrupted one, where the evidence for it is gone (on repeated
sequences: the first half replaced by other random tokens, so induction now points at another
token). Run both. Then rerun the corrupted input with some heads' outputs (z, before W_O)
replaced by what those heads computed on the clean input, at every position. If the answer
comes back, those heads carried it.

Measure the answer by the logit difference logit[correct] - logit[wrong] at the last
position, averaged over the batch, and report how much of the way from corrupted to clean the
patch went:

    fraction = (patched - corrupted) / (clean - corrupted)

0 means the patch changed nothing, 1 that it restored the clean answer in full.

harness.lens.run_with_cache and run_with_hooks give the activations and the patched run;
the heads' outputs are "blocks.{layer}.attn.hook_z", (batch, pos, head, d_head).
"""
from jaxtyping import Float, Int
from torch import Tensor, nn

from harness.lens import run_with_cache, run_with_hooks


def patching_fraction_recovered(
    model: nn.Module,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    heads: list[tuple[int, int]],
    correct: Int[Tensor, " batch"],
    wrong: Int[Tensor, " batch"],
) -> Float[Tensor, ""]:
    """The fraction of the clean run's mean logit difference (correct minus wrong, last position)
    that patching the clean z of `heads` ((layer, head) pairs) into the corrupted run recovers."""
    raise NotImplementedError
