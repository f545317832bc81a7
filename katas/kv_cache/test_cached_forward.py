"""Tests for katas/kv_cache/cached_forward.py (cached_forward), against the uncached GPT2 and Hugging Face."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import random_tokens
from harness.testing.dtypes import DEVICE_HINT, OTHER_DTYPES, TOLERANCES, dtype_hint, on_meta
from harness.testing.oracles import hf_gpt2, reference_gpt2
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import prefill_and_chunks, seeds

KATA = "kv_cache.cached_forward"
cached_forward = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=23, n_ctx=20)
AXES = "batch new d_vocab"


def new_cache(batch: int, device):
    return reference("kv_cache.cache")(CFG, batch, device=device)


def run_in_chunks(model, tokens: torch.Tensor, sizes: list[int], cache) -> list[torch.Tensor]:
    """cached_forward over tokens, `sizes` positions at a time, checking the cache's bookkeeping."""
    logits, start = [], cache.length
    for size in sizes:
        with torch.no_grad():
            logits.append(cached_forward(model, tokens[:, start : start + size], cache))
        assert cache.length == start + size, (
            f"cached + new == total: after {start} cached and {size} new positions the cache should hold {start + size}, "
            f"it says {cache.length}. Call cache.advance(new) once per forward pass, after every layer.")
        start += size
    return logits


@given(lengths=prefill_and_chunks(CFG.n_ctx), batch=st.integers(1, 3), seed=st.integers(0, 3), token_seed=seeds)
def test_prefill_then_chunks_equal_the_uncached_model(lengths, batch, seed, token_seed, device):
    prompt_len, chunks = lengths
    sizes = [prompt_len, *chunks]
    model = reference_gpt2(CFG, seed, str(device))
    tokens = random_tokens(batch, sum(sizes), CFG.d_vocab, seed=token_seed, device=device)
    with torch.no_grad():
        expected = model(tokens)
    start = 0
    for size, logits in zip(sizes, run_in_chunks(model, tokens, sizes, new_cache(batch, device))):
        check_tensor(logits, expected[:, start : start + size], kata=KATA, atol=1e-4, rtol=1e-4, axes=AXES,
                     what=f"logits of positions {start}..{start + size - 1} after {start} cached ones",
                     hint=f"The new tokens are at positions {start}, {start + 1}, ...: offset their positional embeddings.")
        start += size


@pytest.mark.parametrize("sizes", [[6, 1, 1, 1], [3, 4, 2], [9]], ids=str)
def test_logits_equal_hugging_face(sizes, device):
    hf = hf_gpt2(CFG, 1, str(device))
    model = reference_gpt2(CFG, 1, str(device))
    tokens = random_tokens(2, sum(sizes), CFG.d_vocab, seed=5, device=device)
    with torch.no_grad():
        expected = hf(tokens).logits
    logits = torch.cat(run_in_chunks(model, tokens, sizes, new_cache(2, device)), dim=1)
    check_tensor(logits, expected, kata=KATA, atol=1e-4, rtol=1e-4, axes="batch posn d_vocab",
                 what=f"cached logits fed {sizes} tokens at a time, vs Hugging Face's", hint="Same model, same weights: only the path differs.")


@pytest.mark.parametrize("beam_indices", [[2, 0, 1], [1, 1, 0]])
def test_after_a_reorder_the_rows_continue_their_new_parents(beam_indices, device):
    model = reference_gpt2(CFG, 2, str(device))
    tokens = random_tokens(3, 8, CFG.d_vocab, seed=6, device=device)
    cache = new_cache(3, device)
    run_in_chunks(model, tokens, [5], cache)
    cache.reorder(torch.tensor(beam_indices, device=device))
    continued = torch.cat([tokens[beam_indices, :5], tokens[:, 5:]], dim=1)  # each row's parent, then its own new tokens
    with torch.no_grad():
        expected = model(continued)[:, 5:]
        logits = cached_forward(model, tokens[:, 5:], cache)
    check_tensor(logits, expected, kata=KATA, atol=1e-4, rtol=1e-4, axes=AXES,
                 what=f"logits after cache.reorder({beam_indices})", hint="Read the keys and values from the cache as it is now.")


@pytest.mark.parametrize("cached, new", [(0, CFG.n_ctx + 1), (15, 6), (CFG.n_ctx, 1)])
def test_going_past_the_context_is_an_error_before_anything_changes(cached, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    cache = new_cache(1, device)
    tokens = random_tokens(1, cached + new, CFG.d_vocab, seed=7, device=device)
    if cached:
        run_in_chunks(model, tokens, [cached], cache)
    keys_before = cache.keys.clone()
    with pytest.raises(ValueError):
        cached_forward(model, tokens[:, cached:], cache)
    assert cache.length == cached, f"a refused forward pass must leave cache.length at {cached}, got {cache.length}"
    check_tensor(cache.keys, keys_before, kata=KATA, what="cache.keys after a refused forward pass",
                 hint="Check cache.length + new <= n_ctx first, before any layer writes to the cache.")


def test_exactly_filling_the_context_works(device):
    model = reference_gpt2(CFG, 0, str(device))
    tokens = random_tokens(1, CFG.n_ctx, CFG.d_vocab, seed=8, device=device)
    with torch.no_grad():
        expected = model(tokens)[:, -1]
    last = run_in_chunks(model, tokens, [CFG.n_ctx - 1, 1], new_cache(1, device))[-1]
    check_tensor(last[:, -1], expected, kata=KATA, atol=1e-4, rtol=1e-4, what="logits of the n_ctx-th position",
                 hint="cache.length + new == n_ctx still fits.")


def test_leaves_its_input_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    cache = new_cache(2, device)
    check_inputs_unchanged(lambda tokens: cached_forward(model, tokens, cache), random_tokens(2, 4, CFG.d_vocab, seed=9, device=device),
                           kata=KATA, what="cached_forward")


def model_in(dtype, device) -> torch.nn.Module:
    """A copy of the reference GPT2 (random weights) converted with .to(dtype)."""
    model = reference("model.gpt2")(CFG)
    model.load_state_dict(reference_gpt2(CFG, 2, "cpu").state_dict())
    return model.to(device=device, dtype=dtype).eval()


def prompt_then_next(run, model, tokens: torch.Tensor, *, dtype, device) -> list[torch.Tensor]:
    cache = reference("kv_cache.cache")(CFG, tokens.shape[0], device=device, dtype=dtype)
    with torch.no_grad():
        return [run(model, tokens[:, :4], cache), run(model, tokens[:, 4:], cache)]


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_the_model(dtype, device):
    model = model_in(dtype, device)
    tokens = random_tokens(2, 6, CFG.d_vocab, seed=8, device=device)
    mine = prompt_then_next(cached_forward, model, tokens, dtype=dtype, device=device)
    theirs = prompt_then_next(reference(KATA), model, tokens, dtype=dtype, device=device)
    atol, rtol = TOLERANCES[dtype]
    for part, got, want in zip(("the prompt", "the next positions"), mine, theirs):
        check_tensor(got, want, kata=KATA, what=f"cached_forward's logits for {part} in {dtype}", axes=AXES,
                     atol=atol, rtol=rtol, hint=dtype_hint(dtype))


def test_creates_no_tensor_on_another_device():
    model = model_in(torch.float32, "cpu").to("meta")
    tokens = random_tokens(2, 6, CFG.d_vocab, seed=8).to("meta")
    mine = on_meta(lambda: prompt_then_next(cached_forward, model, tokens, dtype=torch.float32, device="meta"),
                   kata=KATA, what="cached_forward")
    for part, got, want in zip(("the prompt", "the next positions"), mine, [(2, 4, CFG.d_vocab), (2, 2, CFG.d_vocab)]):
        check_shape(got, want, torch.float32, kata=KATA, what=f"cached_forward's logits for {part} on the meta device",
                    axes=AXES, device=torch.device("meta"), hint=DEVICE_HINT)
