"""Tests for katas/model/load_gpt2_weights.py (load_gpt2_weights)."""
import pytest
import torch
from hypothesis import given

from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.data import random_tokens
from harness.testing.oracles import hf_gpt2, reference_gpt2
from harness.testing.strategies import NAMED_CONFIGS, configs, seeds

KATA = "model.load_gpt2_weights"
load_gpt2_weights = under_test(KATA)


def empty_gpt2(cfg, device) -> torch.nn.Module:
    """A reference GPT2 whose every parameter is NaN, so that anything left unfilled shows."""
    model = reference("model.gpt2")(cfg).to(device).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))
    return model


def error_raised_by_loading(state: dict, cfg, device, problem: str, model: "torch.nn.Module | None" = None) -> Exception:
    """The error load_gpt2_weights raises on `state` (a stub's NotImplementedError passes through)."""
    __tracebackhide__ = True
    try:
        load_gpt2_weights(empty_gpt2(cfg, device) if model is None else model, state)
    except NotImplementedError:
        raise
    except Exception as error:  # any error type will do, as long as it names the key
        return error
    pytest.fail(f"load_gpt2_weights accepted a state dict with {problem} and raised nothing.\n{stuck(KATA)}", pytrace=False)


def check_same_parameters(actual: torch.nn.Module, expected: torch.nn.Module) -> None:
    __tracebackhide__ = True
    expected_params = expected.state_dict()
    for name, value in actual.state_dict().items():
        check_tensor(value, expected_params[name], kata=KATA, what=f"parameter {name}", atol=0, rtol=0,
                     hint="Compare this parameter's Hugging Face source: its name, its (in, out) layout, its head split.")


@given(cfg=configs(max_layers=3), seed=seeds)
def test_fills_every_parameter_as_the_reference_does(cfg, seed, device):
    model = empty_gpt2(cfg, device)
    load_gpt2_weights(model, hf_gpt2(cfg, seed, str(device)).state_dict())
    check_same_parameters(model, reference_gpt2(cfg, seed, str(device)))


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_loaded_model_matches_hugging_face_logits(name, device):
    cfg = NAMED_CONFIGS[name]
    hf = hf_gpt2(cfg, 0, str(device))
    model = empty_gpt2(cfg, device)
    load_gpt2_weights(model, hf.state_dict())
    tokens = random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=3, device=device)
    with torch.no_grad():
        check_tensor(model(tokens), hf(tokens).logits, kata=KATA, what="logits after loading", axes="batch posn d_vocab",
                     atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("missing", ["transformer.h.1.attn.c_attn.bias", "transformer.wpe.weight", "transformer.ln_f.weight"])
def test_a_missing_key_is_an_error_that_names_it(missing, device):
    cfg = NAMED_CONFIGS["many_heads"]
    state = dict(hf_gpt2(cfg, 0, str(device)).state_dict())
    del state[missing]
    error = error_raised_by_loading(state, cfg, device, f"{missing!r} missing")
    assert missing in str(error), f"The error should name the missing key {missing!r}; it said: {error!r}\n{stuck(KATA)}"


@pytest.mark.parametrize("unexpected", ["transformer.h.0.attn.c_attn.extra", "transformer.h.2.ln_1.weight"])
def test_an_unexpected_key_is_an_error_that_names_it(unexpected, device):
    cfg = NAMED_CONFIGS["many_heads"]
    state = dict(hf_gpt2(cfg, 0, str(device)).state_dict())
    state[unexpected] = torch.zeros(cfg.d_model, device=device)
    error = error_raised_by_loading(state, cfg, device, f"an unexpected key {unexpected!r}")
    assert unexpected in str(error), f"The error should name the unexpected key {unexpected!r}; it said: {error!r}\n{stuck(KATA)}"


def test_a_parameter_of_ours_left_unfilled_is_an_error_that_names_it(device):
    """Our model with one parameter more than GPT-2 has: no Hugging Face key fills it, and the load must say so
    (a load_state_dict(strict=False) would leave it NaN without a word)."""
    cfg = NAMED_CONFIGS["many_heads"]
    model = empty_gpt2(cfg, device)
    model.blocks[1].attn.register_parameter("W_extra", torch.nn.Parameter(torch.full((2,), float("nan"), device=device)))
    error = error_raised_by_loading(dict(hf_gpt2(cfg, 0, str(device)).state_dict()), cfg, device,
                                    "no key for our parameter 'blocks.1.attn.W_extra'", model=model)
    assert "blocks.1.attn.W_extra" in str(error), (
        f"The error should name our unfilled parameter 'blocks.1.attn.W_extra'; it said: {error!r}\n{stuck(KATA)}")


def test_does_not_modify_the_hugging_face_state_dict(device):
    cfg = NAMED_CONFIGS["tiny"]
    state = dict(hf_gpt2(cfg, 0, str(device)).state_dict())
    before = {key: value.clone() for key, value in state.items()}
    load_gpt2_weights(empty_gpt2(cfg, device), state)
    assert state.keys() == before.keys(), f"load_gpt2_weights removed or added keys of the dict it was given.\n{stuck(KATA)}"
    for key, value in before.items():
        assert torch.equal(state[key], value), f"load_gpt2_weights changed hf_state_dict[{key!r}].\n{stuck(KATA)}"


OLD_FORMS = {
    "no_prefix": "keys without 'transformer.'",
    "no_lm_head": "no lm_head.weight (tied to wte.weight)",
    "mask_buffers": "the buffers attn.bias and attn.masked_bias",
}


def as_older_transformers_saved(state: dict, cfg, forms: "list[str]") -> dict:
    """`state` as older transformers versions saved it, in the given ways (OLD_FORMS)."""
    state = dict(state)
    if "mask_buffers" in forms:
        for layer in range(cfg.n_layers):
            state[f"transformer.h.{layer}.attn.bias"] = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx))[None, None].bool()
            state[f"transformer.h.{layer}.attn.masked_bias"] = torch.tensor(-1e4)
    if "no_lm_head" in forms:
        del state["lm_head.weight"]
    if "no_prefix" in forms:
        state = {key.removeprefix("transformer."): value for key, value in state.items()}
    return state


@pytest.mark.parametrize("forms", [["no_prefix"], ["no_lm_head"], ["mask_buffers"], list(OLD_FORMS)],
                         ids=["no_prefix", "no_lm_head", "mask_buffers", "all"])
def test_loads_state_dicts_as_older_transformers_saved_them(forms, device):
    cfg = NAMED_CONFIGS["many_heads"]
    state = as_older_transformers_saved(hf_gpt2(cfg, 0, str(device)).state_dict(), cfg, forms)
    model = empty_gpt2(cfg, device)
    try:
        load_gpt2_weights(model, state)
    except NotImplementedError:  # a RuntimeError too, but the stub untouched is "not implemented yet", not a refusal
        raise
    except (KeyError, ValueError, RuntimeError) as error:
        pytest.fail(f"load_gpt2_weights refused a state dict with {' and '.join(OLD_FORMS[f] for f in forms)}, as older "
                    f"transformers versions saved them: {type(error).__name__}: {error}\n{stuck(KATA)}", pytrace=False)
    check_same_parameters(model, reference_gpt2(cfg, 0, str(device)))


def test_an_unexpected_key_without_the_prefix_is_still_an_error(device):
    cfg = NAMED_CONFIGS["many_heads"]
    state = as_older_transformers_saved(hf_gpt2(cfg, 0, str(device)).state_dict(), cfg, list(OLD_FORMS))
    state["h.0.attn.c_attn.extra"] = torch.zeros(cfg.d_model, device=device)
    error = error_raised_by_loading(state, cfg, device, "an unexpected key 'h.0.attn.c_attn.extra'")
    assert "'h.0.attn.c_attn.extra'" in str(error) and "transformer.h.0.attn.c_attn.extra" not in str(error), (
        f"The error should name the unexpected key as the caller wrote it, 'h.0.attn.c_attn.extra' (not the name it "
        f"was mapped to, with the prefix added); it said: {error!r}\n{stuck(KATA)}")
