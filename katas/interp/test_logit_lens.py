"""Tests for katas/interp/logit_lens.py (logit_lens)."""
import pytest
import torch

from harness.lens import run_with_cache
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import CFG, check_model_unchanged, hf_twin, induction_model, random_model, repeated
from harness.testing.oracles import hf_module_io

KATA = "interp.logit_lens"
logit_lens = under_test(KATA)
RECOMPUTED_SCALE = ("Use the final layer norm's scale as the model computed it, cache['ln_final.hook_scale'], for every "
                    "layer: a scale recomputed from each layer's own residual is not the map the model applies.")


@pytest.mark.parametrize("batch, pos", [(1, 4), (2, 7)])
def test_shape_and_dtype(batch, pos, device):
    model = random_model(0, device)
    tokens = random_tokens(batch, pos, CFG.d_vocab, seed=pos, device=device)
    check_shape(logit_lens(model, tokens), (CFG.n_layers + 1, batch, pos, CFG.d_vocab), torch.float32, kata=KATA,
                what="the logit lens", axes="layer batch pos d_vocab", device=tokens.device,
                hint="n_layers + 1 readings: the residual before each block, then after the last one.")


def test_the_last_reading_is_the_models_own_logits(device):
    model = random_model(1, device)
    tokens = random_tokens(2, 6, CFG.d_vocab, seed=1, device=device)
    with torch.no_grad():
        logits = model(tokens)
    check_tensor(logit_lens(model, tokens)[-1], logits, kata=KATA, what="the last reading of the logit lens", axes="batch pos d_vocab",
                 atol=1e-4, hint="The last reading is the residual after the last block through ln_final and the unembedding "
                 "(W_U, then b_U): the model's logits.")


def lens_with_recomputed_scales(model, tokens):
    """A known mistake: the final layer norm applied afresh to each layer's residual."""
    _, cache = run_with_cache(model, tokens)
    residuals = [cache["resid_pre", layer] for layer in range(model.cfg.n_layers)] + [cache["resid_post", model.cfg.n_layers - 1]]
    return torch.stack([model.unembed(model.ln_final(residual)) for residual in residuals])


@pytest.mark.parametrize("seed", [2, 3])
def test_each_reading_matches_hugging_face_hidden_states_through_the_final_scale(seed, device):
    """The independent computation: Hugging Face's hidden_states, its ln_f's input for the scale, its lm_head."""
    model, hf = random_model(seed, device), hf_twin(seed, device)
    tokens = random_tokens(2, 6, CFG.d_vocab, seed=seed, device=device)
    with torch.no_grad():
        hidden = list(hf(tokens, output_hidden_states=True).hidden_states[:-1])
        final, _ = hf_module_io(hf, hf.transformer.ln_f, tokens)
        ln = hf.transformer.ln_f
        scale = (final.var(dim=-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
        expected = torch.stack([hf.lm_head((x - x.mean(-1, keepdim=True)) / scale * ln.weight + ln.bias) for x in hidden + [final]])
    readings = logit_lens(model, tokens)
    check_shape(readings, tuple(expected.shape), expected.dtype, kata=KATA, what="the logit lens", axes="layer batch pos d_vocab")
    for layer in range(CFG.n_layers + 1):
        where = f"before block {layer}" if layer < CFG.n_layers else "after the last block"
        check_tensor(readings[layer], expected[layer], kata=KATA, what=f"the logit lens reading {where}", axes="batch pos d_vocab",
                     atol=1e-4, hint=diagnose(readings[layer], [(lens_with_recomputed_scales(model, tokens)[layer], RECOMPUTED_SCALE)],
                                              "Centre each residual, divide by the final scale, times ln_final.w, plus ln_final.b; "
                                              "then @ W_U + b_U."))


def test_matches_the_reference_on_the_induction_model(device):
    model = induction_model(device)
    tokens = repeated(2, seed=6, device=device)
    actual, expected = logit_lens(model, tokens), reference(KATA)(model, tokens)
    check_tensor(actual, expected, kata=KATA, what="the logit lens on the induction model", axes="layer batch pos d_vocab", atol=1e-4,
                 hint=diagnose(actual, [(lens_with_recomputed_scales(model, tokens), RECOMPUTED_SCALE)],
                               "Read resid_pre of each block, then the last resid_post, each through the final layer norm "
                               "(the model's own scale) and the unembedding."))


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(4, device, torch.float64)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=4, device=device)
    check_tensor(logit_lens(model, tokens), reference(KATA)(model, tokens), kata=KATA, what="the logit lens of a float64 model",
                 axes="layer batch pos d_vocab", atol=1e-9, rtol=1e-9,
                 hint="Compute from the cache and the model's weights: never a new float32 tensor.")


def test_leaves_the_model_unchanged(device):
    model = random_model(5, device)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=5, device=device)
    check_model_unchanged(lambda: logit_lens(model, tokens), model, kata=KATA, what="logit_lens")


def test_creates_no_tensor_on_another_device():
    model = random_model(6).to("meta")
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=6)
    check_function_on_meta(logit_lens, reference(KATA), model, tokens, kata=KATA, what="the logit lens")
