"""Tests for katas/padding/padded_cached_forward.py (padded_cached_forward), against padded_forward and Hugging Face."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.oracles import hf_gpt2, reference_gpt2
from harness.testing.padding import hf_padded_logits, left_padded
from harness.testing.properties import check_inputs_unchanged
from harness.testing.strategies import seeds

KATA = "padding.padded_cached_forward"
padded_cached_forward = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=23, n_ctx=20)
PAD = CFG.d_vocab - 1
HINT = ("The new tokens' positions are the last columns of parts.positions_from_mask(attention_mask) (a padded row's "
        "positions lag behind its columns), and every block masks the padded keys with the whole mask.")


def new_cache(batch: int, device):
    return reference("kv_cache.cache")(CFG, batch, device=device)


def run_in_chunks(model, tokens, mask, sizes, cache):
    """padded_cached_forward over tokens, `sizes` positions at a time; its logits, concatenated."""
    logits, start = [], 0
    for size in sizes:
        with torch.no_grad():
            logits.append(padded_cached_forward(model, tokens[:, start : start + size], mask[:, : start + size], cache))
        assert cache.length == start + size, (
            f"after {start} cached and {size} new positions the cache should hold {start + size}, it says {cache.length}. "
            "Call cache.advance(new) once per forward pass, after every layer.")
        start += size
    return torch.cat(logits, dim=1)


def check_real(logits, expected, mask, what: str):
    __tracebackhide__ = True
    check_tensor(logits[mask == 1], expected[mask == 1], kata=KATA, atol=1e-4, rtol=1e-4, axes="real_position d_vocab",
                 what=what, hint=HINT)
    assert logits.isfinite().all(), "Some logits at padding positions are NaN or infinite: fill masked scores with a finite number."


@st.composite
def padded_chunks(draw):
    """Prompt lengths (left-padded to the longest) and the chunk sizes the whole batch is fed in."""
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    extra = draw(st.lists(st.integers(1, 3), min_size=0, max_size=4))
    return lengths, [max(lengths), *extra]


@given(drawn=padded_chunks(), seed=st.integers(0, 2), token_seed=seeds, prefill_in_two=st.booleans())
def test_prefill_then_chunks_equal_padded_forward(drawn, seed, token_seed, prefill_in_two, device):
    lengths, sizes = drawn
    if prefill_in_two and sizes[0] > 1:
        sizes = [1, sizes[0] - 1, *sizes[1:]]
    model = reference_gpt2(CFG, seed, str(device))
    prompt, prompt_mask = left_padded(lengths, CFG.d_vocab, seed=token_seed, pad=PAD, device=device)
    more = sum(sizes) - prompt.shape[1]
    following = torch.randint(0, CFG.d_vocab, (len(lengths), more), generator=torch.Generator().manual_seed(token_seed)).to(device)
    tokens = torch.cat([prompt, following], dim=1)
    mask = torch.cat([prompt_mask, torch.ones_like(following)], dim=1)
    with torch.no_grad():
        expected = reference("padding.padded_forward")(model, tokens, mask)
    check_real(run_in_chunks(model, tokens, mask, sizes, new_cache(len(lengths), device)), expected, mask,
               what=f"logits of prompts of lengths {lengths} fed {sizes} positions at a time, vs padded_forward")


@pytest.mark.parametrize("lengths, sizes", [([3, 1, 5], [5, 1, 1, 1]), ([1, 4], [4, 2, 3]), ([2, 2], [2, 1])], ids=str)
def test_logits_equal_hugging_face(lengths, sizes, device):
    model, hf = reference_gpt2(CFG, 1, str(device)), hf_gpt2(CFG, 1, str(device))
    tokens, mask = left_padded(lengths, CFG.d_vocab, seed=11, pad=PAD, device=device)
    more = sum(sizes) - tokens.shape[1]
    tokens = torch.cat([tokens, tokens[:, -1:].expand(-1, more)], dim=1)
    mask = torch.cat([mask, torch.ones_like(mask[:, :1]).expand(-1, more)], dim=1)
    check_real(run_in_chunks(model, tokens, mask, sizes, new_cache(len(lengths), device)),
               hf_padded_logits(hf, tokens, mask), mask,
               what=f"cached logits fed {sizes} at a time vs Hugging Face's model(tokens, attention_mask=..., position_ids=...)")


def test_one_new_token_after_a_padded_prefill_by_hand(device):
    model = reference_gpt2(CFG, 2, str(device))
    tokens, mask = left_padded([1, 4], CFG.d_vocab, seed=12, pad=PAD, device=device)
    cache = new_cache(2, device)
    run_in_chunks(model, tokens, mask, [4], cache)
    step = torch.tensor([[3], [3]], device=device)
    with torch.no_grad():
        logits = padded_cached_forward(model, step, torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1), cache)
        alone = model(torch.cat([tokens[:1, -1:], step[:1]], dim=1))[:, -1]
    check_tensor(logits[:1, -1], alone, kata=KATA, atol=1e-4, rtol=1e-4, what="the new token of a row with one real prompt token",
                 hint="That row's new token is its second real token: position 1, not 4.")


@pytest.mark.parametrize("cached, new", [(0, CFG.n_ctx + 1), (15, 6)])
def test_going_past_the_context_is_an_error_before_anything_changes(cached, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    cache = new_cache(1, device)
    tokens, mask = left_padded([cached + new], CFG.d_vocab, seed=13, pad=PAD, device=device)
    if cached:
        run_in_chunks(model, tokens, mask, [cached], cache)
    keys_before = cache.keys.clone()
    with pytest.raises(ValueError):
        padded_cached_forward(model, tokens[:, cached:], mask, cache)
    assert cache.length == cached, f"a refused forward pass must leave cache.length at {cached}, got {cache.length}"
    check_tensor(cache.keys, keys_before, kata=KATA, what="cache.keys after a refused forward pass",
                 hint="Check the context length first, before any layer writes to the cache.")


@pytest.mark.parametrize("sizes", [[CFG.n_ctx], [CFG.n_ctx - 3, 3]], ids=str)
def test_exactly_filling_the_context_works(sizes, device):
    """n_ctx positions in all, cached plus new, fit: the error is for more than n_ctx, not for n_ctx."""
    model = reference_gpt2(CFG, 0, str(device))
    tokens, mask = left_padded([CFG.n_ctx - 4, CFG.n_ctx], CFG.d_vocab, seed=16, pad=PAD, device=device)
    logits = run_in_chunks(model, tokens, mask, sizes, new_cache(2, device))
    check_real(logits, reference("padding.padded_forward")(model, tokens, mask), mask,
               what=f"logits of a batch that fills the whole context ({' then '.join(map(str, sizes))} positions)")


def test_a_mask_that_does_not_cover_every_position_is_an_error(device):
    model = reference_gpt2(CFG, 0, str(device))
    cache = new_cache(2, device)
    tokens, mask = left_padded([2, 4], CFG.d_vocab, seed=14, pad=PAD, device=device)
    run_in_chunks(model, tokens, mask, [4], cache)
    with pytest.raises(ValueError):
        padded_cached_forward(model, tokens[:, :1], torch.ones_like(tokens[:, :1]), cache)
    assert cache.length == 4, "a refused forward pass must leave the cache as it was"


def test_leaves_its_inputs_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    cache = new_cache(2, device)
    tokens, mask = left_padded([3, 1], CFG.d_vocab, seed=15, pad=PAD, device=device)
    check_inputs_unchanged(lambda t, m: padded_cached_forward(model, t, m, cache), tokens, mask, kata=KATA,
                           what="padded_cached_forward")
