"""Tests for katas/kv_cache/cache.py (KVCache): update, advance and reorder."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import under_test
from harness.testing.asserts import check_tensor
from harness.testing.data import randn
from harness.testing.dtypes import DEVICE_HINT, OTHER_DTYPES, dtype_hint
from harness.testing.strategies import seeds

KATA = "kv_cache.cache"
KVCache = under_test(KATA)
CFG = Config(d_model=12, n_heads=3, n_layers=2, d_vocab=10, n_ctx=9)


def new_entries(batch: int, new: int, *, seed: int, device, cfg: Config = CFG) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (batch, cfg.n_heads, new, cfg.d_head)
    return randn(*shape, seed=seed, device=device), randn(*shape, seed=seed + 1, device=device)


def fill(cache, chunks: list[int], *, seed: int, device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Feed chunks of new keys and values to every layer, advancing after each chunk, as a forward
    pass does; return what every layer should now hold, per layer."""
    batch = cache.keys.shape[1]
    keys, values = [[] for _ in range(CFG.n_layers)], [[] for _ in range(CFG.n_layers)]
    for number, new in enumerate(chunks):
        for layer in range(CFG.n_layers):
            k, v = new_entries(batch, new, seed=seed + 100 * number + 10 * layer, device=device)
            cache.update(layer, k, v)
            keys[layer].append(k)
            values[layer].append(v)
        cache.advance(new)
    return [torch.cat(k, dim=2) for k in keys], [torch.cat(v, dim=2) for v in values]


@given(chunks=st.lists(st.integers(1, 4), min_size=1, max_size=4).filter(lambda c: sum(c) <= CFG.n_ctx),
       batch=st.integers(1, 3), seed=seeds)
def test_update_appends_after_the_cached_positions_and_returns_them_all(chunks, batch, seed, device):
    cache = KVCache(CFG, batch, device=device)
    assert tuple(cache.keys.shape) == (CFG.n_layers, batch, CFG.n_heads, CFG.n_ctx, CFG.d_head), "keep __init__'s layout"
    length = 0
    for number, new in enumerate(chunks):
        for layer in range(CFG.n_layers):
            before_keys = cache.keys[layer, :, :, :length].clone()
            before_values = cache.values[layer, :, :, :length].clone()
            k, v = new_entries(batch, new, seed=seed + 10 * number + layer, device=device)
            keys, values = cache.update(layer, k, v)
            hint = f"After {length} cached positions, update must return positions 0..{length + new - 1}: the cached ones, then the new."
            check_tensor(keys, torch.cat([before_keys, k], dim=2), kata=KATA, what=f"keys returned by update (layer {layer})",
                         axes="batch n_heads total d_head", hint=hint)
            check_tensor(values, torch.cat([before_values, v], dim=2), kata=KATA,
                         what=f"values returned by update (layer {layer})", axes="batch n_heads total d_head", hint=hint)
            assert cache.length == length, (
                f"update changed cache.length from {length} to {cache.length}. Only advance may change it, once every "
                "layer of a forward pass has been updated (else layer 1 would write after layer 0's new tokens).")
        cache.advance(new)
        assert cache.length == length + new, (
            f"cached + new == total: {length} cached + {new} new should make length {length + new}, got {cache.length}")
        length += new


@given(chunks=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=seeds)
def test_each_layer_keeps_its_own_keys_and_values(chunks, seed, device):
    cache = KVCache(CFG, 2, device=device)
    keys, values = fill(cache, chunks, seed=seed, device=device)
    for layer in range(CFG.n_layers):
        total = sum(chunks)
        check_tensor(cache.keys[layer, :, :, :total], keys[layer], kata=KATA, what=f"cache.keys[{layer}]",
                     axes="batch n_heads total d_head", hint="Write into this layer's slice only, at positions length..length+new-1.")
        check_tensor(cache.values[layer, :, :, :total], values[layer], kata=KATA, what=f"cache.values[{layer}]",
                     axes="batch n_heads total d_head", hint="Values go into cache.values, keys into cache.keys.")


@pytest.mark.parametrize("cached, new", [(0, CFG.n_ctx + 1), (5, 5), (CFG.n_ctx, 1)])
def test_going_past_the_context_is_an_error_and_writes_nothing(cached, new, device):
    cache = KVCache(CFG, 1, device=device)
    if cached:
        fill(cache, [cached], seed=0, device=device)
    keys_before, values_before = cache.keys.clone(), cache.values.clone()
    k, v = new_entries(1, new, seed=7, device=device)
    with pytest.raises(ValueError):
        cache.update(0, k, v)
    check_tensor(cache.keys, keys_before, kata=KATA, what="cache.keys after a refused update",
                 hint="Check cache.length + new <= n_ctx before writing anything.")
    check_tensor(cache.values, values_before, kata=KATA, what="cache.values after a refused update")
    assert cache.length == cached, "a refused update must leave cache.length alone"


def test_advancing_past_the_context_is_an_error(device):
    cache = KVCache(CFG, 1, device=device)
    cache.advance(CFG.n_ctx - 1)
    with pytest.raises(ValueError):
        cache.advance(2)
    assert cache.length == CFG.n_ctx - 1, "a refused advance must leave cache.length alone"


@pytest.mark.parametrize("beam_indices", [[1, 0, 2], [2, 2, 0], [0, 0, 0]])
def test_reorder_copies_rows_in_every_layer(beam_indices, device):
    cache = KVCache(CFG, 3, device=device)
    keys, values = fill(cache, [2, 1], seed=3, device=device)
    cache.reorder(torch.tensor(beam_indices, device=device))
    hint = "Row i becomes a copy of row beam_indices[i], in every layer, for keys and values."
    for layer in range(CFG.n_layers):
        check_tensor(cache.keys[layer, :, :, :3], keys[layer][beam_indices], kata=KATA,
                     what=f"cache.keys[{layer}] after reorder({beam_indices})", axes="batch n_heads total d_head", hint=hint)
        check_tensor(cache.values[layer, :, :, :3], values[layer][beam_indices], kata=KATA,
                     what=f"cache.values[{layer}] after reorder({beam_indices})", axes="batch n_heads total d_head", hint=hint)
    assert cache.length == 3, "reorder must not change cache.length"
    k, v = new_entries(3, 1, seed=9, device=device)
    keys_after, _ = cache.update(0, k, v)
    check_tensor(keys_after, torch.cat([keys[0][beam_indices], k], dim=2), kata=KATA,
                 what="keys returned by the first update after a reorder", axes="batch n_heads total d_head", hint=hint)


@pytest.mark.parametrize("dtype", OTHER_DTYPES, ids=str)
def test_buffers_take_the_dtype_they_are_given(dtype, device):
    cache = KVCache(CFG, 2, device=device, dtype=dtype)
    for name in ("keys", "values"):
        buffer = getattr(cache, name)
        assert buffer.dtype == dtype, f"KVCache(..., dtype={dtype}).{name} has dtype {buffer.dtype}. {dtype_hint(dtype)}"
    expected = fill(cache, [3, 2], seed=5, device=device)
    for layer in range(CFG.n_layers):
        for name, returned, want in (("keys", cache.keys, expected[0]), ("values", cache.values, expected[1])):
            check_tensor(returned[layer, :, :, :5], want[layer].to(dtype), kata=KATA, what=f"cached {name} in {dtype}",
                         axes="batch n_heads total d_head", hint=dtype_hint(dtype))


def test_buffers_are_on_the_device_they_are_given():
    cache = KVCache(CFG, 2, device="meta")
    for name in ("keys", "values"):
        buffer = getattr(cache, name)
        assert buffer.device.type == "meta", (
            f"KVCache(..., device='meta').{name} is on {buffer.device}: allocate the buffers with device=device. {DEVICE_HINT}")
    k, v = new_entries(2, 3, seed=0, device="meta")
    keys, values = cache.update(0, k, v)
    assert keys.device.type == values.device.type == "meta" and tuple(keys.shape) == tuple(k.shape), (
        f"update on the meta device returned keys of shape {tuple(keys.shape)} on {keys.device}, expected "
        f"{tuple(k.shape)} on meta.")
