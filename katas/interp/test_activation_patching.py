"""Tests for katas/interp/activation_patching.py (patching_fraction_recovered)."""
import pytest
import torch

from harness.lens import run_with_cache, run_with_hooks
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import (
    CFG,
    HALF,
    INDUCTION_HEADS,
    check_model_unchanged,
    corrupted,
    induction_model,
    random_model,
    repeated,
)

KATA = "interp.activation_patching"
patching_fraction_recovered = under_test(KATA)
FRACTION_HINT = ("fraction = (patched - corrupted) / (clean - corrupted), each the mean over the batch of "
                 "logit[correct] - logit[wrong] at the last position.")


def question(device, batch: int = 6, seed: int = 20, half: int = HALF, d_vocab: int = 64):
    """Clean: a repeated sequence without its last token, so the last position should predict the repeat
    of token half - 1. Corrupted: the first half replaced, so induction predicts the replacement's."""
    clean = repeated(batch, seed=seed, half=half, d_vocab=d_vocab, device=device)[:, :-1]
    broken = corrupted(clean, seed=seed + 1, half=half, d_vocab=d_vocab)
    return clean, broken, clean[:, half - 1], broken[:, half - 1]


def patched_by_hand(model, clean, broken, heads, correct, wrong) -> torch.Tensor:
    """The independent computation: every head's z patched in one hook per head, each logit difference
    taken row by row."""
    _, clean_cache = run_with_cache(model, clean)

    def diff(logits):
        return torch.stack([logits[row, -1, correct[row]] - logits[row, -1, wrong[row]] for row in range(len(logits))]).mean()

    def patch_one(layer, head):
        def hook(z, name):
            patched = z.clone()
            patched[:, :, head] = clean_cache[f"blocks.{layer}.attn.hook_z"][:, :, head]
            return patched
        return hook

    with torch.no_grad():
        clean_diff, broken_diff = diff(model(clean)), diff(model(broken))
        patched = diff(run_with_hooks(model, broken, [(f"blocks.{layer}.attn.hook_z", patch_one(layer, head)) for layer, head in heads]))
    return (patched - broken_diff) / (clean_diff - broken_diff)


def test_returns_one_number(device):
    model = induction_model(device)
    clean, broken, correct, wrong = question(device)
    check_shape(patching_fraction_recovered(model, clean, broken, [(1, 0)], correct, wrong), (), torch.float32, kata=KATA,
                what="the fraction recovered", device=clean.device, hint="One number for the batch: a 0-d tensor.")


@pytest.mark.parametrize("heads", [[], [(1, 1)], [(0, 1), (0, 3)], [(0, 1), (1, 2)], INDUCTION_HEADS], ids=str)
def test_matches_patching_done_by_hand(heads, device):
    model = induction_model(device)
    clean, broken, correct, wrong = question(device)
    check_tensor(patching_fraction_recovered(model, clean, broken, heads, correct, wrong),
                 patched_by_hand(model, clean, broken, heads, correct, wrong), kata=KATA,
                 what=f"the fraction recovered by patching heads {heads}", atol=1e-4,
                 hint="Patch z[:, :, head] of each (layer, head) from the clean run's cache, at every position, in a hook on "
                 "that layer's hook_z. " + FRACTION_HINT)


def test_matches_the_reference_on_a_random_model(device):
    model = random_model(3, device)
    clean, broken, correct, wrong = question(device, batch=3, seed=21, half=5, d_vocab=CFG.d_vocab)
    heads = [(0, 2), (1, 3)]
    expected = reference(KATA)(model, clean, broken, heads, correct, wrong)
    check_tensor(patching_fraction_recovered(model, clean, broken, heads, correct, wrong), expected, kata=KATA,
                 what=f"the fraction recovered by patching heads {heads} (random weights)", atol=1e-4, hint=FRACTION_HINT)


def test_the_induction_heads_carry_the_answer(device):
    model = induction_model(device)
    clean, broken, correct, wrong = question(device, seed=22)
    induction = patching_fraction_recovered(model, clean, broken, INDUCTION_HEADS, correct, wrong).item()
    one_head = patching_fraction_recovered(model, clean, broken, [(1, 1)], correct, wrong).item()
    assert induction > 0.8 and 0.05 < one_head < induction, (
        f"patching the induction heads {INDUCTION_HEADS} recovered {induction:.2f} of the logit difference, head 1.1 alone "
        f"{one_head:.2f}; the reference gives about 1.0 and 0.33.\n{stuck(KATA)}")


def test_leaves_the_model_and_the_inputs_unchanged(device):
    model = induction_model(device)
    clean, broken, correct, wrong = question(device, seed=23)
    kept = [tensor.clone() for tensor in (clean, broken, correct, wrong)]
    check_model_unchanged(lambda: patching_fraction_recovered(model, clean, broken, INDUCTION_HEADS, correct, wrong), model,
                          kata=KATA, what="patching_fraction_recovered")
    assert all(torch.equal(a, b) for a, b in zip(kept, (clean, broken, correct, wrong))), (
        f"patching_fraction_recovered changed its inputs in place\n{stuck(KATA)}")


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(4, device, torch.float64)
    clean, broken, correct, wrong = question(device, batch=2, seed=24, half=4, d_vocab=CFG.d_vocab)
    check_tensor(patching_fraction_recovered(model, clean, broken, [(1, 0)], correct, wrong),
                 reference(KATA)(model, clean, broken, [(1, 0)], correct, wrong), kata=KATA,
                 what="the fraction recovered in a float64 model", atol=1e-9, rtol=1e-9,
                 hint="Compute from the logits and the cache: never a new float32 tensor.")


def test_creates_no_tensor_on_another_device():
    model = random_model(5).to("meta")
    clean, broken, correct, wrong = question("cpu", batch=2, seed=25, half=4, d_vocab=CFG.d_vocab)
    check_function_on_meta(patching_fraction_recovered, reference(KATA), model, clean, broken, [(0, 1)], correct, wrong, kata=KATA,
                           what="the fraction recovered")
