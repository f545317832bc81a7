"""Tests for katas/kv_cache/cached_attention.py (cached_attention), against parts.Attention on the whole sequence."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.data import randn, randomize_parameters_
from harness.testing.dtypes import DEVICE_HINT, OTHER_DTYPES, TOLERANCES, dtype_hint, on_meta
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import prefill_and_chunks, seeds

KATA = "kv_cache.cached_attention"
cached_attention = under_test(KATA)
CFG = Config(d_model=16, n_heads=4, n_layers=2, d_vocab=10, n_ctx=24)
AXES = "batch new d_model"


def attention(seed: int, device) -> torch.nn.Module:
    """The reference Attention (parts.Attention) with every weight and bias random."""
    return randomize_parameters_(reference("attention.multi_head_attention")(CFG), seed, CFG.d_model).to(device).eval()


def run_in_chunks(attn, x: torch.Tensor, sizes: list[int], *, layer: int, device) -> tuple[list[torch.Tensor], object]:
    """cached_attention over x, `sizes` positions at a time, advancing the cache after each (as
    cached_forward does once every layer is done)."""
    cache = reference("kv_cache.cache")(CFG, x.shape[0], device=device)
    outputs, start = [], 0
    for size in sizes:
        with torch.no_grad():
            out = cached_attention(attn, x[:, start : start + size], cache, layer)
        check_shape(out, (x.shape[0], size, CFG.d_model), torch.float32, kata=KATA,
                    what=f"cached_attention's output for {size} new positions", axes=AXES)
        assert cache.length == start, (
            f"cached_attention changed cache.length from {start} to {cache.length}. Leave it: the model's forward "
            "calls cache.advance once, after every layer.")
        cache.advance(size)
        outputs.append(out)
        start += size
    return outputs, cache


@given(lengths=prefill_and_chunks(CFG.n_ctx), batch=st.integers(1, 3), seed=seeds)
def test_chunk_by_chunk_equals_attention_over_the_whole_sequence(lengths, batch, seed, device):
    prompt_len, chunks = lengths
    sizes = [prompt_len, *chunks]
    attn = attention(seed, device)
    x = randn(batch, sum(sizes), CFG.d_model, seed=seed + 1, device=device)
    with torch.no_grad():
        expected = attn(x)
    outputs, _ = run_in_chunks(attn, x, sizes, layer=1, device=device)
    start = 0
    for size, out in zip(sizes, outputs):
        check_tensor(out, expected[:, start : start + size], kata=KATA, atol=1e-4, rtol=1e-4, axes=AXES,
                     what=f"cached_attention for positions {start}..{start + size - 1} (after {start} cached)",
                     hint=f"New query i is at position {start} + i: it sees every cached key and the new keys up to itself.")
        start += size


@pytest.mark.parametrize("layer", [0, 1])
def test_the_cache_holds_each_positions_keys_and_values(layer, device):
    attn = attention(3, device)
    x = randn(2, 7, CFG.d_model, seed=4, device=device)
    _, cache = run_in_chunks(attn, x, [4, 1, 2], layer=layer, device=device)
    with torch.no_grad():
        keys = torch.einsum("bpd,hde->bhpe", x, attn.W_K) + attn.b_K[:, None, :]
        values = torch.einsum("bpd,hde->bhpe", x, attn.W_V) + attn.b_V[:, None, :]
    hint = "Pass the new keys and values, biases included, in the layout (batch, n_heads, new, d_head) to cache.update."
    check_tensor(cache.keys[layer, :, :, :7], keys, kata=KATA, what=f"cache.keys[{layer}]", axes="batch n_heads posn d_head",
                 atol=1e-5, hint=hint + f" Use the layer you are given ({layer}).")
    check_tensor(cache.values[layer, :, :, :7], values, kata=KATA, what=f"cache.values[{layer}]", axes="batch n_heads posn d_head",
                 atol=1e-5, hint=hint)


def test_one_new_token_attends_to_every_cached_one(device):
    attn = attention(5, device)
    x = randn(1, 6, CFG.d_model, seed=6, device=device)
    changed = x.clone()
    changed[:, 0] += 1.0  # a change to the first token must reach the last one's output
    last, _ = run_in_chunks(attn, x, [5, 1], layer=0, device=device)
    last_changed, _ = run_in_chunks(attn, changed, [5, 1], layer=0, device=device)
    assert not torch.allclose(last[1], last_changed[1]), (
        "the new token's output does not depend on the first cached token: it must attend to every cached key "
        "(with one new token, nothing is masked).")


def test_leaves_its_input_unchanged(device):
    attn = attention(7, device)
    cache = reference("kv_cache.cache")(CFG, 2, device=device)
    check_inputs_unchanged(lambda x: cached_attention(attn, x, cache, 0), randn(2, 3, CFG.d_model, seed=8, device=device),
                           kata=KATA, what="cached_attention")


def prompt_then_next(run, attn, x: torch.Tensor, *, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """`run` over the first 3 positions of x, then over the rest, with a cache in `dtype` on `device`."""
    cache = reference("kv_cache.cache")(CFG, x.shape[0], device=device, dtype=dtype)
    with torch.no_grad():
        first = run(attn, x[:, :3], cache, 1)
        cache.advance(3)
        return first, run(attn, x[:, 3:], cache, 1)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_keeps_the_dtype_of_its_inputs(dtype, device):
    attn = attention(3, device).to(dtype)
    x = randn(2, 5, CFG.d_model, seed=4, device=device).to(dtype)
    mine = prompt_then_next(cached_attention, attn, x, dtype=dtype, device=device)
    theirs = prompt_then_next(reference(KATA), attn, x, dtype=dtype, device=device)
    atol, rtol = TOLERANCES[dtype]
    for part, got, want in zip(("the prompt", "the next positions"), mine, theirs):
        check_tensor(got, want, kata=KATA, what=f"cached_attention's output for {part} in {dtype}", axes=AXES,
                     atol=atol, rtol=rtol, hint=dtype_hint(dtype))


def test_creates_no_tensor_on_another_device():
    attn = attention(3, "cpu").to("meta")
    x = randn(2, 5, CFG.d_model, seed=4).to("meta")
    mine = on_meta(lambda: prompt_then_next(cached_attention, attn, x, dtype=torch.float32, device="meta"),
                   kata=KATA, what="cached_attention")
    for part, got, want in zip(("the prompt", "the next positions"), mine, [(2, 3, CFG.d_model), (2, 2, CFG.d_model)]):
        check_shape(got, want, torch.float32, kata=KATA, what=f"cached_attention's output for {part} on the meta device",
                    axes=AXES, device=torch.device("meta"), hint=DEVICE_HINT)
