"""Tests for katas/interp/residual_stack.py (residual_stack)."""
import pytest
import torch

from harness.lens import component_labels
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import CFG, check_model_unchanged, hf_twin, induction_model, random_model, repeated
from harness.testing.oracles import hf_module_io

KATA = "interp.residual_stack"
residual_stack = under_test(KATA)
ORDER = "embed, pos_embed, then per layer: each head (0 .. n_heads - 1), b_O, the MLP"


def n_components(cfg) -> int:
    return 2 + cfg.n_layers * (cfg.n_heads + 2)


@pytest.mark.parametrize("batch, pos", [(1, 5), (3, 9)])
def test_shape_and_dtype(batch, pos, device):
    model = random_model(0, device)
    tokens = random_tokens(batch, pos, CFG.d_vocab, seed=pos, device=device)
    check_shape(residual_stack(model, tokens), (n_components(CFG), batch, pos, CFG.d_model), torch.float32, kata=KATA,
                what="the residual stack", axes="component batch pos d_model", device=tokens.device,
                hint=f"One component per row, in the order {ORDER}: 2 + n_layers * (n_heads + 2) of them.")


def known_mistakes(model, tokens) -> list:
    """What a stack that forgot b_O, or put each head's z through the whole W_O, would sum to."""
    expected = reference(KATA)(model, tokens)
    labels = component_labels(model.cfg.n_layers, model.cfg.n_heads)
    biases = sum(expected[labels.index(f"L{layer} b_O")] for layer in range(model.cfg.n_layers))
    return [(expected.sum(0) - biases, "The attention's bias b_O is missing: it belongs to no head, so it is a component "
             "of its own (one per layer, the same at every position).")]


@pytest.mark.parametrize("seed", [0, 1])
def test_sums_to_what_hugging_face_feeds_its_final_layer_norm(seed, device):
    """The independent computation: Hugging Face's GPT-2 with the same weights, its ln_f's input."""
    model, hf = random_model(seed, device), hf_twin(seed, device)
    tokens = random_tokens(2, 7, CFG.d_vocab, seed=seed + 10, device=device)
    final_residual, _ = hf_module_io(hf, hf.transformer.ln_f, tokens)
    total = residual_stack(model, tokens).sum(dim=0)
    check_tensor(total, final_residual, kata=KATA, what="the sum of the residual stack", axes="batch pos d_model", atol=1e-4,
                 hint=diagnose(total, known_mistakes(model, tokens),
                               "The components must add up to the final residual: every piece added to the stream, once."))


def test_each_layer_starts_from_the_sum_of_the_components_before_it(device):
    """Hugging Face's hidden_states[l] is the residual block l reads: the components before it sum to it."""
    model, hf = random_model(2, device), hf_twin(2, device)
    tokens = random_tokens(2, 6, CFG.d_vocab, seed=3, device=device)
    stack = residual_stack(model, tokens)
    check_shape(stack, (n_components(CFG), 2, 6, CFG.d_model), torch.float32, kata=KATA, what="the residual stack",
                axes="component batch pos d_model")
    with torch.no_grad():
        hidden = hf(tokens, output_hidden_states=True).hidden_states
    for layer in range(CFG.n_layers):
        before = 2 + layer * (CFG.n_heads + 2)
        check_tensor(stack[:before].sum(0), hidden[layer], kata=KATA, what=f"the components before block {layer}, summed",
                     axes="batch pos d_model", atol=1e-4,
                     hint=f"Keep the order {ORDER}: the components of layer l come after those of every earlier layer.")


def test_each_component_matches_the_reference_on_the_induction_model(device):
    model = induction_model(device)
    tokens = repeated(2, seed=5, device=device)
    stack, expected = residual_stack(model, tokens), reference(KATA)(model, tokens)
    check_shape(stack, tuple(expected.shape), expected.dtype, kata=KATA, what="the residual stack", axes="component batch pos d_model")
    for label, mine, theirs in zip(component_labels(model.cfg.n_layers, model.cfg.n_heads), stack, expected):
        check_tensor(mine, theirs, kata=KATA, what=f"component {label!r} of the residual stack", axes="batch pos d_model", atol=1e-4,
                     hint="A head's component is that head's z (cache['z', layer][:, :, h]) through its own W_O[h], "
                     f"without b_O. The order: {ORDER}.")


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(3, device, torch.float64)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=4, device=device)
    check_tensor(residual_stack(model, tokens), reference(KATA)(model, tokens), kata=KATA, what="the residual stack of a float64 model",
                 axes="component batch pos d_model", atol=1e-9, rtol=1e-9,
                 hint="Take every component from the cache or the model's own weights: never a new float32 tensor.")


def test_leaves_the_model_unchanged(device):
    model = random_model(4, device)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=5, device=device)
    check_model_unchanged(lambda: residual_stack(model, tokens), model, kata=KATA, what="residual_stack")


def test_creates_no_tensor_on_another_device():
    model = random_model(5).to("meta")
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=6)
    check_function_on_meta(residual_stack, reference(KATA), model, tokens, kata=KATA, what="the residual stack")
