"""Tests for katas/sampling/generate.py (generate), against Hugging Face's generate()."""
import pytest
import torch

from harness.config import Config
from harness.testing import check_inputs_unchanged, check_tensor, hf_as_model, hf_generate, hf_gpt2, random_tokens, under_test

KATA = "sampling.generate"
generate = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
EOS = CFG.d_vocab - 1
SAMPLING = [dict(top_k=0), dict(top_k=4), dict(top_k=0, top_p=0.8), dict(temperature=0.7, top_k=6, top_p=0.9, repetition_penalty=1.3)]


@pytest.mark.parametrize("eos", [None, EOS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_hugging_face(seed, eos, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=seed + 10, device=device)
    expected = hf_generate(hf, prompt, max_new_tokens=12, do_sample=False, eos_token_id=eos)
    check_tensor(generate(hf_as_model(hf), prompt, 12, eos_token_id=eos, do_sample=False), expected, kata=KATA,
                 what="greedy generation", axes="batch total_len",
                 hint="Logits of the last position each step; finished rows get eos appended; stop when all have finished.")


@pytest.mark.parametrize("options", SAMPLING, ids=[str(o) for o in SAMPLING])
@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_with_the_same_seed_equals_hugging_face(seed, options, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=seed + 20, device=device)
    torch.manual_seed(seed)
    expected = hf_generate(hf, prompt, max_new_tokens=15, do_sample=True, eos_token_id=EOS, **options)
    torch.manual_seed(seed)
    actual = generate(hf_as_model(hf), prompt, 15, eos_token_id=EOS, do_sample=True, **options)
    check_tensor(actual, expected, kata=KATA, what=f"sampled generation with {options}", axes="batch total_len",
                 hint="Sample every row at every step (finished ones too, then overwrite them with eos), so that the "
                 "random draws stay in step with Hugging Face's.")


def test_stops_after_max_new_tokens_and_keeps_the_prompt(device):
    hf = hf_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, 5, CFG.d_vocab, seed=3, device=device)
    tokens = generate(hf_as_model(hf), prompt, 7, do_sample=False)
    assert tuple(tokens.shape) == (2, 12), f"5 prompt tokens + 7 new ones make 12, got shape {tuple(tokens.shape)}"
    check_tensor(tokens[:, :5], prompt, kata=KATA, what="the prompt part of the output")
    check_inputs_unchanged(lambda p: generate(hf_as_model(hf), p, 3, do_sample=False), prompt, kata=KATA, what="generate")
