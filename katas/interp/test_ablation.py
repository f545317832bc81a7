"""Tests for katas/interp/ablation.py (repeated_half_loss_ablated)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from harness.lens import run_with_cache
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import CFG, INDUCTION_HEADS, PREVIOUS_TOKEN_HEADS, check_model_unchanged, induction_model, random_model, repeated

KATA = "interp.ablation"
repeated_half_loss_ablated = under_test(KATA)
LOSS_HINT = ("The loss counts the repeated half's predictable tokens: cross-entropy of logits[:, half:-1] against "
             "tokens[:, half + 1:], averaged.")


def repeated_half_loss(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        logits = model(tokens)
    half = tokens.shape[1] // 2
    return F.cross_entropy(logits[:, half:-1].flatten(0, 1), tokens[:, half + 1:].flatten())


def without_heads(model, heads, tokens, ablation: str):
    """The independent computation: a copy of the model whose heads' W_O slices are zero, their mean
    output moved into b_O for mean-ablation (z[:, :, h] @ W_O[h] is all the model ever does with z)."""
    ablated = copy.deepcopy(model)
    for layer in sorted({layer for layer, _ in heads}):
        _, cache = run_with_cache(ablated, tokens)  # the means of this run, where earlier layers are ablated already
        with torch.no_grad():
            for head in [head for at, head in heads if at == layer]:
                attn = ablated.blocks[layer].attn
                if ablation == "mean":
                    attn.b_O += cache["z", layer][:, :, head].mean(dim=(0, 1)) @ attn.W_O[head]
                attn.W_O[head] = 0
    return ablated


def test_without_ablation_it_is_the_loss_on_the_repeated_half(device):
    model = induction_model(device)
    tokens = repeated(4, seed=10, device=device)
    loss = repeated_half_loss_ablated(model, tokens, [])
    check_shape(loss, (), torch.float32, kata=KATA, what="the loss", device=tokens.device, hint="One number: the mean loss, a 0-d tensor.")
    check_tensor(loss, repeated_half_loss(model, tokens), kata=KATA, what="the loss with no head ablated", atol=1e-5, hint=LOSS_HINT)


@pytest.mark.parametrize("ablation", ["zero", "mean"])
@pytest.mark.parametrize("heads", [[(0, 1)], [(1, 2)], [(0, 3), (1, 0)]], ids=str)
def test_equals_the_model_without_those_heads_output(heads, ablation, device):
    model = induction_model(device)
    tokens = repeated(4, seed=11, device=device)
    expected = repeated_half_loss(without_heads(model, heads, tokens, ablation), tokens)
    check_tensor(repeated_half_loss_ablated(model, tokens, heads, ablation), expected, kata=KATA,
                 what=f"the loss with heads {heads} {ablation}-ablated", atol=1e-4,
                 hint=("Zero-ablation sets z[:, :, head] to 0 in a copy of z" if ablation == "zero" else
                       "Mean-ablation sets z[:, :, head] to its mean over the batch and every position (one d_head vector)")
                 + " for each (layer, head), in a hook on that layer's hook_z. " + LOSS_HINT)


@pytest.mark.parametrize("ablation", ["zero", "mean"])
def test_matches_the_reference_on_a_random_model(ablation, device):
    model = random_model(1, device)
    tokens = repeated(3, seed=12, half=5, d_vocab=CFG.d_vocab, device=device)
    heads = [(0, 2), (1, 1)]
    check_tensor(repeated_half_loss_ablated(model, tokens, heads, ablation), reference(KATA)(model, tokens, heads, ablation), kata=KATA,
                 what=f"the loss with heads {heads} {ablation}-ablated (random weights)", atol=1e-5, hint=LOSS_HINT)


def test_without_its_induction_heads_the_model_forgets_what_it_saw(device):
    model = induction_model(device)
    tokens = repeated(8, seed=13, device=device)
    intact = repeated_half_loss_ablated(model, tokens, []).item()
    without_induction = repeated_half_loss_ablated(model, tokens, INDUCTION_HEADS).item()
    without_previous = repeated_half_loss_ablated(model, tokens, PREVIOUS_TOKEN_HEADS, "mean").item()
    assert without_induction > intact + 3 and without_previous > intact + 2, (
        f"the repeated half's loss: {intact:.2f} intact, {without_induction:.2f} without the induction heads "
        f"{INDUCTION_HEADS}, {without_previous:.2f} without the previous-token heads {PREVIOUS_TOKEN_HEADS} (mean-ablated); "
        f"the reference gives about 0.1, 6.2 and 4.5.\n{stuck(KATA)}")


def test_an_unknown_ablation_is_an_error(device):
    model = random_model(2, device)
    tokens = repeated(1, seed=14, half=3, d_vocab=CFG.d_vocab, device=device)
    with pytest.raises(ValueError, match="ablation"):
        repeated_half_loss_ablated(model, tokens, [(0, 0)], "resample")


@pytest.mark.parametrize("ablation", ["zero", "mean"])
def test_leaves_the_model_unchanged(ablation, device):
    model = induction_model(device)
    tokens = repeated(2, seed=15, device=device)
    check_model_unchanged(lambda: repeated_half_loss_ablated(model, tokens, INDUCTION_HEADS, ablation), model, kata=KATA,
                          what=f"repeated_half_loss_ablated with {ablation}-ablation")
    check_tensor(repeated_half_loss_ablated(model, tokens, []), repeated_half_loss(model, tokens), kata=KATA,
                 what="the loss with no head ablated, after an ablation", atol=1e-5,
                 hint="An ablation must last one run only: hooks through run_with_hooks, never a change to the model.")


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(3, device, torch.float64)
    tokens = repeated(2, seed=16, half=4, d_vocab=CFG.d_vocab, device=device)
    for ablation in ("zero", "mean"):
        check_tensor(repeated_half_loss_ablated(model, tokens, [(1, 0)], ablation), reference(KATA)(model, tokens, [(1, 0)], ablation),
                     kata=KATA, what=f"the loss of a float64 model, {ablation}-ablated", atol=1e-9, rtol=1e-9,
                     hint="Replace z with values in z's own dtype (zeros_like, a mean of z): never a new float32 tensor.")


def test_creates_no_tensor_on_another_device():
    model = random_model(4).to("meta")
    tokens = repeated(2, seed=17, half=4, d_vocab=CFG.d_vocab)
    for ablation in ("zero", "mean"):
        check_function_on_meta(repeated_half_loss_ablated, reference(KATA), model, tokens, [(0, 1)], ablation, kata=KATA,
                               what=f"the loss with {ablation}-ablation")


