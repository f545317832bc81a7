"""Tests for katas/model/gpt2.py (GPT2), against the reference and Hugging Face's GPT-2."""
import pytest
import torch
from hypothesis import given

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens, tokens_with_extremes
from harness.testing.dtypes import OTHER_DTYPES, check_module_in_dtype, check_module_on_meta
from harness.testing.gradients import check_gradients
from harness.testing.oracles import check_matches_reference, hf_gpt2, matching_modules, module_like, reference_gpt2
from harness.testing.properties import check_batch_independent, check_causal, check_inputs_unchanged
from harness.testing.strategies import NAMED_CONFIGS, configs_and_sizes, seeds

KATA = "model.gpt2"
AXES = "batch posn d_vocab"
GPT2 = under_test(KATA)


def gpt2_like_hf(cfg: Config, seed: int, device) -> torch.nn.Module:
    """The GPT2 under test with the weights of hf_gpt2(cfg, seed), loaded by the reference loader."""
    return module_like(KATA, cfg, reference_gpt2(cfg, seed, str(device)), device=device)


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
@pytest.mark.parametrize("posn", [1, 5])
def test_shape_and_dtype(cfg, posn, device):
    model, _ = matching_modules(KATA, cfg, seed=0, device=device)
    with torch.no_grad():
        logits = model(random_tokens(2, posn, cfg.d_vocab, seed=1, device=device))
    check_shape(logits, (2, posn, cfg.d_vocab), torch.float32, kata=KATA, what="GPT2 logits", axes=AXES)


@given(config_and_sizes=configs_and_sizes(max_layers=3), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    check_matches_reference(KATA, cfg, random_tokens(batch, posn, cfg.d_vocab, seed=seed + 1, device=device),
                            seed=seed, device=device, what="GPT2 logits", axes=AXES,
                            hint="embed + pos_embed, every block in order, ln_final, unembed.")


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_logits_match_hugging_face(name, device):
    cfg = NAMED_CONFIGS[name]
    model = gpt2_like_hf(cfg, 0, device)
    tokens = random_tokens(3, cfg.n_ctx, cfg.d_vocab, seed=4, device=device)
    with torch.no_grad():
        expected = hf_gpt2(cfg, 0, str(device))(tokens).logits
        check_tensor(model(tokens), expected, kata=KATA, what="GPT2 logits vs Hugging Face's GPT2LMHeadModel",
                     axes=AXES, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_logits_match_hugging_face_at_gpt2_small_size(device):
    cfg = Config.gpt2_small()  # d_model 768, 12 heads, 12 layers, vocabulary 50257, context 1024
    model = gpt2_like_hf(cfg, 0, device)
    tokens = random_tokens(2, 24, cfg.d_vocab, seed=5, device=device)
    try:
        with torch.no_grad():
            expected = hf_gpt2(cfg, 0, str(device))(tokens).logits
            check_tensor(model(tokens), expected, kata=KATA, what="GPT-2 small logits vs Hugging Face's",
                         axes=AXES, atol=1e-4, rtol=1e-4)
    finally:
        hf_gpt2.cache_clear()  # half a gigabyte each: do not keep them for the other tests
        reference_gpt2.cache_clear()


def test_logits_match_pretrained_gpt2_in_the_local_cache(device):
    """Runs only where GPT-2's real weights are already in the Hugging Face cache."""
    from transformers import GPT2LMHeadModel

    try:
        hf = GPT2LMHeadModel.from_pretrained("gpt2", local_files_only=True).to(device).eval()
    except (OSError, ValueError) as error:
        pytest.skip(f"GPT-2's pretrained weights are not in the local Hugging Face cache (never downloaded at test time): {type(error).__name__}")
    model = GPT2(Config.gpt2_small()).to(device).eval()
    reference("model.load_gpt2_weights")(model, hf.state_dict())
    tokens = torch.tensor([[15496, 995, 11, 314, 716, 257, 3303, 2746, 13]], device=device)  # "Hello world, I am a language model."
    with torch.no_grad():
        check_tensor(model(tokens), hf(tokens).logits, kata=KATA, what="GPT2 logits with the pretrained weights",
                     axes=AXES, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("position", [0, 4])
def test_is_causal(position, device):
    cfg = NAMED_CONFIGS["many_heads"]
    model, _ = matching_modules(KATA, cfg, seed=0, device=device)
    tokens = random_tokens(2, 8, cfg.d_vocab, seed=1, device=device)
    changed = tokens.clone()
    changed[:, position] = (changed[:, position] + 1) % cfg.d_vocab
    check_causal(model, tokens, changed, position, kata=KATA, what="GPT2 logits")


def test_sequences_in_a_batch_are_independent(device):
    cfg = NAMED_CONFIGS["many_heads"]
    model, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_batch_independent(model, random_tokens(3, 6, cfg.d_vocab, seed=1, device=device), kata=KATA, what="GPT2 logits")


def test_does_not_modify_the_tokens(device):
    cfg = NAMED_CONFIGS["tiny"]
    model, _ = matching_modules(KATA, cfg, seed=0, device=device)
    check_inputs_unchanged(model, random_tokens(2, 5, cfg.d_vocab, seed=1, device=device), kata=KATA, what="GPT2")


def test_every_parameter_learns(device):
    cfg = NAMED_CONFIGS["many_heads"]
    module, expected = matching_modules(KATA, cfg, seed=0, device=device)
    check_gradients(module, expected, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), kata=KATA, what="GPT2 logits")


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_weights(dtype, device):
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_in_dtype(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device=device), dtype,
                          what="GPT2 logits", axes=AXES, device=device)


def test_creates_no_tensor_on_another_device():
    cfg = NAMED_CONFIGS["many_heads"]
    check_module_on_meta(KATA, cfg, tokens_with_extremes(2, cfg.n_ctx, cfg.d_vocab, seed=1, device='cpu'), what="GPT2 logits", axes=AXES)
