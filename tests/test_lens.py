"""harness.lens: activations named as TransformerLens names them, checked against Hugging Face's
GPT-2 (output_hidden_states, output_attentions, its submodules' outputs) and against the reference
computed by hand; hooks that ablate a head or patch the residual stream."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import lens
from harness.config import Config
from harness.testing import reference
from harness.testing.data import random_tokens
from harness.testing.oracles import hf_gpt2, reference_gpt2

CFG = Config(d_model=24, n_heads=4, n_layers=2, d_vocab=29, n_ctx=16)
SEED = 5


@pytest.fixture(scope="module")
def model():
    return reference_gpt2(CFG, SEED)


@pytest.fixture(scope="module")
def tokens():
    return random_tokens(2, 7, CFG.d_vocab, seed=1)


@pytest.fixture(scope="module")
def run(model, tokens):
    with torch.no_grad():
        return lens.run_with_cache(model, tokens)


def expected_shape(name: str, batch: int, pos: int) -> tuple:
    last = name.rsplit(".", 1)[-1]
    if last in ("hook_attn_scores", "hook_pattern"):
        return (batch, CFG.n_heads, pos, pos)
    if last in ("hook_q", "hook_k", "hook_v", "hook_z"):
        return (batch, pos, CFG.n_heads, CFG.d_head)
    if last in ("hook_pre", "hook_post"):
        return (batch, pos, CFG.d_mlp)
    if last == "hook_scale":
        return (batch, pos, 1)
    return (batch, pos, CFG.d_model)


def test_every_name_is_there_with_its_shape(run, tokens):
    logits, cache = run
    assert logits.shape == (2, 7, CFG.d_vocab)
    assert list(cache) == lens.hook_names(CFG.n_layers)
    for name, value in cache.items():
        assert tuple(value.shape) == expected_shape(name, *tokens.shape), name
    assert "blocks.1.attn.hook_pattern" in cache and "ln_final.hook_normalized" in cache
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"] and cache["embed"] is cache["hook_embed"]


def test_the_logits_are_the_model_s_and_the_hooks_are_removed(model, run, tokens):
    with torch.no_grad():
        assert torch.equal(run[0], model(tokens))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@torch.no_grad()
def test_matches_hugging_face(run, tokens):
    _, cache = run
    hf = hf_gpt2(CFG, SEED)
    implementation, hf.config._attn_implementation = hf.config._attn_implementation, "eager"  # eager returns the weights
    seen = {}
    hooks = [(hf.transformer.h[i].attn.c_attn, f"c_attn{i}") for i in range(CFG.n_layers)]
    hooks += [(hf.transformer.h[i].attn, f"attn{i}") for i in range(CFG.n_layers)]
    hooks += [(hf.transformer.h[i].mlp.act, f"act{i}") for i in range(CFG.n_layers)]
    hooks += [(hf.transformer.h[i].mlp, f"mlp{i}") for i in range(CFG.n_layers)]

    def record(key):
        def hook(module, args, out):
            seen[key] = out[0] if isinstance(out, tuple) else out
        return hook

    handles = [module.register_forward_hook(record(key)) for module, key in hooks]
    try:
        out = hf(tokens, output_hidden_states=True, output_attentions=True)
    finally:
        hf.config._attn_implementation = implementation  # the model is shared (lru_cache) with other tests
        for handle in handles:
            handle.remove()
    close = dict(atol=1e-5, rtol=1e-5)
    for i in range(CFG.n_layers):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], out.hidden_states[i], **close)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_pattern"], out.attentions[i], **close)
        q, k, v = (t.unflatten(-1, (CFG.n_heads, CFG.d_head)) for t in seen[f"c_attn{i}"].split(CFG.d_model, dim=-1))
        for name, theirs in (("q", q), ("k", k), ("v", v)):
            torch.testing.assert_close(cache[name, i], theirs, **close)
        torch.testing.assert_close(cache["attn_out", i], seen[f"attn{i}"], **close)
        torch.testing.assert_close(cache["post", i], seen[f"act{i}"], **close)
        torch.testing.assert_close(cache["mlp_out", i], seen[f"mlp{i}"], **close)
    ln_f = hf.transformer.ln_f
    torch.testing.assert_close(cache["ln_final.hook_normalized"] * ln_f.weight + ln_f.bias, out.hidden_states[-1], **close)
    torch.testing.assert_close(run[0], out.logits, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_matches_the_reference_computed_by_hand(model, run, tokens):
    _, cache = run
    parts = {kata: reference(kata) for kata in ("attention.attention_scores", "attention.causal_mask",
                                                  "attention.attention_pattern", "attention.attend_to_values", "mlp.gelu_new")}
    resid = model.embed(tokens) + model.pos_embed(tokens)
    torch.testing.assert_close(cache["hook_embed"] + cache["hook_pos_embed"], resid)
    for i, block in enumerate(model.blocks):
        torch.testing.assert_close(cache["resid_pre", i], resid)
        x = block.ln1(resid)
        torch.testing.assert_close(cache[f"blocks.{i}.ln1.hook_normalized"] * block.ln1.w + block.ln1.b, x, atol=1e-5, rtol=1e-5)
        a = block.attn
        q, k, v = (torch.einsum("bpd,hde->bphe", x, W) + b for W, b in ((a.W_Q, a.b_Q), (a.W_K, a.b_K), (a.W_V, a.b_V)))
        scores = parts["attention.causal_mask"](parts["attention.attention_scores"](q, k))
        pattern = parts["attention.attention_pattern"](scores)
        z = parts["attention.attend_to_values"](pattern, v)
        for name, value in (("q", q), ("k", k), ("v", v), ("attn_scores", scores), ("pattern", pattern), ("z", z)):
            torch.testing.assert_close(cache[name, i], value, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache["attn_out", i], a(x), atol=1e-5, rtol=1e-5)
        mid = resid + a(x)
        torch.testing.assert_close(cache["resid_mid", i], mid, atol=1e-5, rtol=1e-5)
        pre = block.ln2(mid) @ block.mlp.W_in + block.mlp.b_in
        torch.testing.assert_close(cache["pre", i], pre, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache["post", i], parts["mlp.gelu_new"](pre), atol=1e-5, rtol=1e-5)
        resid = block(resid)
        torch.testing.assert_close(cache["resid_post", i], resid, atol=1e-5, rtol=1e-5)


class FusedAttention(nn.Module):
    """The kata's parameters, used another way (one fused projection, PyTorch's own attention): a
    learner's attention that exposes nothing the lens could read inside."""

    def __init__(self, source: nn.Module):
        super().__init__()
        self.cfg = source.cfg
        for name, param in source.named_parameters():
            setattr(self, name, nn.Parameter(param.detach().clone()))

    def forward(self, x):
        qkv = torch.einsum("bpd,hde->bhpe", x, torch.cat([self.W_Q, self.W_K, self.W_V], dim=-1))
        q, k, v = (t + b[:, None, :] for t, b in zip(qkv.split(self.cfg.d_head, dim=-1), (self.b_Q, self.b_K, self.b_V)))
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return torch.einsum("bhpe,hed->bpd", z, self.W_O) + self.b_O


@torch.no_grad()
def test_works_however_the_attention_is_written(run, tokens):
    other = reference("model.gpt2")(CFG).eval()
    other.load_state_dict(reference_gpt2(CFG, SEED).state_dict())
    for block in other.blocks:
        block.attn = FusedAttention(block.attn)
    logits, cache = lens.run_with_cache(other, tokens)
    torch.testing.assert_close(logits, run[0], atol=1e-5, rtol=1e-5)
    for name in lens.hook_names(CFG.n_layers):
        torch.testing.assert_close(cache[name], run[1][name], atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
    ablated = lens.run_with_hooks(other, tokens, [("blocks.0.attn.hook_pattern", lambda p, hook: p * 0)])
    assert not torch.allclose(ablated, logits), "a hook inside the attention replaces the learner's output"


def zero_head(head: int, axis: int):
    def hook(value, name):
        value = value.clone()
        value.select(axis, head).zero_()
        return value
    return hook


@torch.no_grad()
@pytest.mark.parametrize("name, axis", [("hook_z", 2), ("hook_pattern", 1), ("hook_v", 2)])
def test_zero_ablating_a_head_changes_the_logits_as_computed_by_hand(model, run, tokens, name, axis):
    layer, head = 0, 2
    cache = run[1]
    block = model.blocks[layer]
    # By hand: without head 2, the attention's output loses z[:, :, 2] @ W_O[2]; the rest runs as usual.
    mid = cache["resid_mid", layer] - cache["z", layer][:, :, head] @ block.attn.W_O[head]
    resid = mid + block.mlp(block.ln2(mid))
    for later in model.blocks[layer + 1:]:
        resid = later(resid)
    expected = model.unembed(model.ln_final(resid))
    logits = lens.run_with_hooks(model, tokens, [(f"blocks.{layer}.attn.{name}", zero_head(head, axis))])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits, run[0], atol=1e-3)


@torch.no_grad()
@pytest.mark.parametrize("name", ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_pre",
                                  "blocks.1.hook_resid_post", "hook_embed"])
def test_patching_the_residual_stream_with_another_prompt_s_gives_its_logits(model, tokens, name):
    other = random_tokens(2, 7, CFG.d_vocab, seed=2)
    other_logits, other_cache = lens.run_with_cache(model, other)  # hook_embed: the positions are the same
    logits = lens.run_with_hooks(model, tokens, [(name, lambda value, hook: other_cache[hook.name])])
    torch.testing.assert_close(logits, other_logits, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_hooks_that_change_nothing_change_nothing_and_hooks_see_the_names(model, run, tokens):
    seen = []
    names = ["blocks.0.ln1.hook_normalized", "blocks.1.attn.hook_q", "blocks.1.mlp.hook_post", "ln_final.hook_scale"]
    logits = lens.run_with_hooks(model, tokens, [(name, lambda value, hook: seen.append(hook.name)) for name in names])
    assert seen == names
    torch.testing.assert_close(logits, run[0], atol=1e-5, rtol=1e-5)
    doubled = lens.run_with_hooks(model, tokens, [("ln_final.hook_normalized", lambda value, hook: 2 * value)])
    ln = model.ln_final
    expected = model.unembed(2 * run[1]["ln_final.hook_normalized"] * ln.w + ln.b)
    torch.testing.assert_close(doubled, expected, atol=1e-5, rtol=1e-5)


def test_an_unknown_name_is_an_error(model, tokens):
    with pytest.raises(KeyError, match="hook_patern"):
        lens.run_with_hooks(model, tokens, [("blocks.0.attn.hook_patern", lambda value, hook: None)])


def test_the_cache_can_be_filtered(model, tokens):
    with torch.no_grad():
        _, cache = lens.run_with_cache(model, tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    assert list(cache) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert math.isclose(cache["pattern", 0].sum().item(), 2 * CFG.n_heads * 7, rel_tol=1e-5)
