"""Tests for katas/embeddings/unembedding.py (Unembed)."""
import pytest
import torch
from hypothesis import given

from harness.testing import (
    NAMED_CONFIGS, check_shape, check_tensor, configs_and_sizes, hf_gpt2, hf_module_io, matching_modules,
    random_tokens, randn, reference_gpt2, seeds,
)

KATA = "embeddings.unembedding"
AXES = "batch posn d_vocab"


@pytest.mark.parametrize("cfg", NAMED_CONFIGS.values(), ids=NAMED_CONFIGS.keys())
def test_shape_and_dtype(cfg, device):
    unembed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    out = unembed(randn(2, 3, cfg.d_model, seed=1, device=device))
    check_shape(out, (2, 3, cfg.d_vocab), torch.float32, kata=KATA, what="Unembed output (the logits)", axes=AXES)


@given(config_and_sizes=configs_and_sizes(), seed=seeds)
def test_matches_reference(config_and_sizes, seed, device):
    cfg, batch, posn = config_and_sizes
    unembed, expected = matching_modules(KATA, cfg, seed=seed, device=device)
    x = randn(batch, posn, cfg.d_model, seed=seed + 1, device=device)
    with torch.no_grad():
        check_tensor(unembed(x), expected(x), kata=KATA, what="Unembed output (the logits)", axes=AXES,
                     hint="logits = x @ W_U + b_U: no softmax, and do not forget the bias.")


def test_matches_hugging_face_lm_head(device):
    cfg = NAMED_CONFIGS["many_heads"]
    unembed, _ = matching_modules(KATA, cfg, seed=0, device=device)
    unembed.load_state_dict(reference_gpt2(cfg, 0, str(device)).unembed.state_dict())
    hf = hf_gpt2(cfg, 0, str(device))
    x, expected = hf_module_io(hf, hf.lm_head, random_tokens(2, cfg.n_ctx, cfg.d_vocab, seed=2, device=device))
    with torch.no_grad():
        check_tensor(unembed(x), expected, kata=KATA, what="Unembed output vs Hugging Face's lm_head", atol=1e-4, axes=AXES)
