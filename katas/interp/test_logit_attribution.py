"""Tests for katas/interp/logit_attribution.py (logit_diff_attribution)."""
import pytest
import torch

from harness.lens import component_labels, run_with_cache
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor, diagnose
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_function_on_meta
from harness.testing.interp import CFG, HALF, check_model_unchanged, induction_model, random_model, repeated

KATA = "interp.logit_attribution"
logit_diff_attribution = under_test(KATA)


def some_question(d_vocab: int, batch: int, seed: int, device):
    generator = torch.Generator().manual_seed(seed)
    correct = torch.randint(0, d_vocab, (batch,), generator=generator)
    wrong = (correct + torch.randint(1, d_vocab, (batch,), generator=generator)) % d_vocab
    return correct.to(device), wrong.to(device)


def model_logit_diff(model, tokens, correct, wrong):
    """The model's own logit[correct] - logit[wrong] at the last position, minus the two bias terms
    that belong to no component (ln_final.b and b_U along the same direction)."""
    with torch.no_grad():
        last = model(tokens)[:, -1]
        rows = torch.arange(len(tokens))
        direction = model.unembed.W_U[:, correct] - model.unembed.W_U[:, wrong]
        biases = (model.ln_final.b @ direction) + model.unembed.b_U[correct] - model.unembed.b_U[wrong]
        return last[rows, correct] - last[rows, wrong] - biases


def known_mistakes(model, tokens, correct, wrong) -> list:
    _, cache = run_with_cache(model, tokens)
    components = reference("interp.residual_stack")(model, tokens)[:, :, -1]
    direction = (model.unembed.W_U[:, correct] - model.unembed.W_U[:, wrong]).T
    scale = cache["ln_final.hook_scale"][:, -1]
    centred = components - components.mean(-1, keepdim=True)
    return [
        ((components / scale * model.ln_final.w * direction).sum(-1),
         "Centre each component (subtract its own mean over d_model) before dividing by the scale: the layer norm centres the sum."),
        ((centred * model.ln_final.w * direction).sum(-1),
         "Divide by the final layer norm's scale, cache['ln_final.hook_scale'] at the last position."),
    ]


@pytest.mark.parametrize("batch, pos", [(1, 4), (3, 6)])
def test_shape_and_dtype(batch, pos, device):
    model = random_model(0, device)
    tokens = random_tokens(batch, pos, CFG.d_vocab, seed=pos, device=device)
    correct, wrong = some_question(CFG.d_vocab, batch, pos, device)
    n_components = len(component_labels(CFG.n_layers, CFG.n_heads))
    check_shape(logit_diff_attribution(model, tokens, correct, wrong), (n_components, batch), torch.float32, kata=KATA,
                what="the attribution", axes="component batch", device=tokens.device,
                hint="One number per residual component and row: the last position only.")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_with_the_biases_to_the_models_own_logit_difference(seed, device):
    model = random_model(seed, device)
    with torch.no_grad():  # give the biases a say: Hugging Face's GPT-2 has no b_U
        model.unembed.b_U.normal_(generator=torch.Generator().manual_seed(seed))
    tokens = random_tokens(3, 7, CFG.d_vocab, seed=seed, device=device)
    correct, wrong = some_question(CFG.d_vocab, 3, seed, device)
    total = logit_diff_attribution(model, tokens, correct, wrong).sum(dim=0)
    check_tensor(total, model_logit_diff(model, tokens, correct, wrong), kata=KATA,
                 what="the attribution summed over components (plus the ln_final.b and b_U terms)", axes="batch", atol=1e-4,
                 hint=diagnose(total, [(mistake.sum(0), hint) for mistake, hint in known_mistakes(model, tokens, correct, wrong)],
                               "The components, centred, divided by the final scale and multiplied by ln_final.w, dotted with "
                               "W_U[:, correct] - W_U[:, wrong], must add up to the model's own logit difference (without "
                               "the two bias terms, which belong to no component)."))


def test_matches_the_reference_on_the_induction_model_and_names_the_induction_heads(device):
    model = induction_model(device)
    clean = repeated(4, seed=7, device=device)[:, :-1]  # the last position predicts the repeat of token HALF - 1
    correct, wrong = clean[:, HALF - 1], (clean[:, HALF - 1] + 1) % model.cfg.d_vocab
    actual, expected = logit_diff_attribution(model, clean, correct, wrong), reference(KATA)(model, clean, correct, wrong)
    labels = component_labels(model.cfg.n_layers, model.cfg.n_heads)
    check_shape(actual, tuple(expected.shape), expected.dtype, kata=KATA, what="the attribution", axes="component batch")
    for label, mine, theirs in zip(labels, actual, expected):
        check_tensor(mine, theirs, kata=KATA, what=f"the attribution of {label!r}", axes="batch", atol=1e-4,
                     hint=diagnose(actual, known_mistakes(model, clean, correct, wrong),
                                   "Each component at the last position: centred, divided by the final scale, times "
                                   "ln_final.w, dotted with W_U[:, correct] - W_U[:, wrong]."))


def test_keeps_the_dtype_of_the_model(device):
    model = random_model(4, device, torch.float64)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=4, device=device)
    correct, wrong = some_question(CFG.d_vocab, 2, 4, device)
    check_tensor(logit_diff_attribution(model, tokens, correct, wrong), reference(KATA)(model, tokens, correct, wrong), kata=KATA,
                 what="the attribution of a float64 model", axes="component batch", atol=1e-9, rtol=1e-9,
                 hint="Compute from the cache and the model's weights: never a new float32 tensor.")


def test_leaves_the_model_and_the_tokens_unchanged(device):
    model = random_model(5, device)
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=5, device=device)
    correct, wrong = some_question(CFG.d_vocab, 2, 5, device)
    kept = (tokens.clone(), correct.clone(), wrong.clone())
    check_model_unchanged(lambda: logit_diff_attribution(model, tokens, correct, wrong), model, kata=KATA, what="logit_diff_attribution")
    assert all(torch.equal(a, b) for a, b in zip(kept, (tokens, correct, wrong))), "logit_diff_attribution changed its inputs in place"


def test_creates_no_tensor_on_another_device():
    model = random_model(6).to("meta")
    tokens = random_tokens(2, 5, CFG.d_vocab, seed=6)
    correct, wrong = some_question(CFG.d_vocab, 2, 6, "cpu")
    check_function_on_meta(logit_diff_attribution, reference(KATA), model, tokens, correct, wrong, kata=KATA, what="the attribution")
