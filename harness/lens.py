"""See inside a GPT-2 built from the katas: activations named as TransformerLens names them.

    logits, cache = run_with_cache(model, tokens)
    cache["blocks.0.attn.hook_pattern"]          # (batch, head, query, key)
    cache["pattern", 0]                          # the same, TransformerLens's shorthand
    logits = run_with_hooks(model, tokens, fwd_hooks=[("blocks.0.attn.hook_z", ablate_head_3)])

A hook is fn(activation, hook) -> None or a replacement tensor; `hook` is the activation's
name (a str, with a .name too, as TransformerLens's HookPoint has). The names, per block i:

    hook_embed, hook_pos_embed                            (batch, pos, d_model)
    blocks.{i}.hook_resid_pre                             (batch, pos, d_model)
    blocks.{i}.ln1.hook_scale                             (batch, pos, 1)
    blocks.{i}.ln1.hook_normalized                        (batch, pos, d_model)  before w and b, as in TransformerLens
    blocks.{i}.attn.hook_q, hook_k, hook_v, hook_z        (batch, pos, head, d_head)
    blocks.{i}.attn.hook_attn_scores, hook_pattern        (batch, head, query, key)  masked scores hold finfo.min
    blocks.{i}.hook_attn_out, hook_resid_mid              (batch, pos, d_model)
    blocks.{i}.ln2.hook_scale, ln2.hook_normalized
    blocks.{i}.mlp.hook_pre, mlp.hook_post                (batch, pos, d_mlp)  before and after the GELU
    blocks.{i}.hook_mlp_out, hook_resid_post              (batch, pos, d_model)
    ln_final.hook_scale, ln_final.hook_normalized

Why this works on any learner's model: the katas fix the module tree (model.embed, pos_embed,
blocks[i].ln1, attn, ln2, mlp, ln_final, unembed) and each module's parameters (W_Q is
(n_heads, d_model, d_head), ...), not how forward is written. So everything here is read at
module boundaries with PyTorch forward hooks, and what lives inside a module (q, k, v, the
pattern, the MLP's hidden layer, the layer norm's scale) is recomputed from the module's input
and its weights. The module's own output is kept unless a hook changes something inside it;
then the module's output is recomputed from the changed activation and replaces it.
"""
import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Hook = Callable[[Tensor, "HookName"], "Tensor | None"]
ATTENTION_INSIDE = ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z")
# TransformerLens's shorthand: cache["pattern", 0] is cache["blocks.0.attn.hook_pattern"].
SHORT_NAMES = {
    "resid_pre": "hook_resid_pre", "resid_mid": "hook_resid_mid", "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out",
    "q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v", "z": "attn.hook_z",
    "attn_scores": "attn.hook_attn_scores", "pattern": "attn.hook_pattern",
    "pre": "mlp.hook_pre", "post": "mlp.hook_post",
}


class HookName(str):
    """An activation's name, passed to hooks; `.name` too, for code written for TransformerLens."""

    @property
    def name(self) -> str:
        return str(self)


class ActivationCache(dict):
    """name -> activation (detached); also cache["pattern", layer] and cache["embed"]."""

    def __getitem__(self, key):
        if isinstance(key, tuple):
            short, layer = key
            key = f"blocks.{layer}.{SHORT_NAMES.get(short, short)}"
        elif key in ("embed", "pos_embed"):
            key = f"hook_{key}"
        return super().__getitem__(key)


def hook_names(n_layers: int) -> list[str]:
    """Every activation's name, in the order the forward pass reaches them."""
    names = ["hook_embed", "hook_pos_embed"]
    for i in range(n_layers):
        b = f"blocks.{i}."
        names += [b + "hook_resid_pre", b + "ln1.hook_scale", b + "ln1.hook_normalized"]
        names += [b + "attn." + name for name in ATTENTION_INSIDE]
        names += [b + "hook_attn_out", b + "hook_resid_mid", b + "ln2.hook_scale", b + "ln2.hook_normalized",
                  b + "mlp.hook_pre", b + "mlp.hook_post", b + "hook_mlp_out", b + "hook_resid_post"]
    return names + ["ln_final.hook_scale", "ln_final.hook_normalized"]


# ---------------------------------------------------------------- what each module computes inside


def attention_inside(attn: nn.Module, x: Tensor, visit: Callable[[str, Tensor], Tensor]) -> Tensor:
    """q, k, v, scores, pattern and z of `attn` on its input x, each passed through visit(name, value);
    returns the attention's output computed from them."""
    to_heads = "bpd,hde->bphe"
    q = visit("hook_q", torch.einsum(to_heads, x, attn.W_Q) + attn.b_Q)
    k = visit("hook_k", torch.einsum(to_heads, x, attn.W_K) + attn.b_K)
    v = visit("hook_v", torch.einsum(to_heads, x, attn.W_V) + attn.b_V)
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
    future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=x.device).triu(1)
    scores = visit("hook_attn_scores", scores.masked_fill(future, torch.finfo(scores.dtype).min))
    pattern = visit("hook_pattern", scores.softmax(dim=-1))
    z = visit("hook_z", torch.einsum("bhqk,bkhe->bqhe", pattern, v))
    return torch.einsum("bqhe,hed->bqd", z, attn.W_O) + attn.b_O


def mlp_inside(mlp: nn.Module, x: Tensor, visit: Callable[[str, Tensor], Tensor]) -> Tensor:
    pre = visit("hook_pre", x @ mlp.W_in + mlp.b_in)
    post = visit("hook_post", F.gelu(pre, approximate="tanh"))  # gelu_new is GELU's tanh approximation
    return post @ mlp.W_out + mlp.b_out


def layer_norm_inside(ln: nn.Module, x: Tensor, visit: Callable[[str, Tensor], Tensor]) -> Tensor:
    centered = x - x.mean(dim=-1, keepdim=True)
    scale = visit("hook_scale", (centered.pow(2).mean(dim=-1, keepdim=True) + ln.cfg.layer_norm_eps).sqrt())
    return visit("hook_normalized", centered / scale) * ln.w + ln.b


# ---------------------------------------------------------------- hooks on the module tree


class Lens:
    """While open, records activations into `cache` (names passing names_filter) and applies
    `fwd_hooks`, through forward hooks on `model`'s modules."""

    def __init__(self, model: nn.Module, fwd_hooks: Iterable[tuple[str, Hook]] = (), cache: "dict | None" = None,
                 names_filter: "Callable[[str], bool] | None" = None):
        self.model = model
        self.hooks: dict[str, list[Hook]] = {}
        for name, fn in fwd_hooks:
            if name not in hook_names(model.cfg.n_layers):
                raise KeyError(f"no activation named {name!r} (lens.hook_names(n_layers) lists them)")
            self.hooks.setdefault(name, []).append(fn)
        self.cache = cache
        self.names_filter = names_filter or (lambda name: True)
        self.handles = []
        self.resid_mid_change: dict[int, Tensor] = {}

    def visit(self, name: str, value: Tensor) -> Tensor:
        """Apply the hooks on `name` (in order), then record the result."""
        for fn in self.hooks.get(name, ()):
            replaced = fn(value, HookName(name))
            value = value if replaced is None else replaced
        if self.cache is not None and self.names_filter(name):
            self.cache[name] = value.detach()
        return value

    def hooked_inside(self, prefix: str, names: Iterable[str]) -> bool:
        return any(prefix + name in self.hooks for name in names)

    def __enter__(self) -> "Lens":
        model = self.model
        self.on_output(model.embed, lambda module, args, out: self.visit("hook_embed", out))
        self.on_output(model.pos_embed, lambda module, args, out: self.visit("hook_pos_embed", out))
        for i, block in enumerate(model.blocks):
            self.watch_block(i, block)
        self.watch_layer_norm("ln_final.", model.ln_final)
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def on_output(self, module: nn.Module, fn) -> None:
        self.handles.append(module.register_forward_hook(fn))

    def on_input(self, module: nn.Module, fn) -> None:
        self.handles.append(module.register_forward_pre_hook(fn))

    def watch_block(self, i: int, block: nn.Module) -> None:
        prefix = f"blocks.{i}."
        self.on_input(block, lambda module, args: (self.visit(prefix + "hook_resid_pre", args[0]), *args[1:]))
        self.watch_layer_norm(prefix + "ln1.", block.ln1)
        self.watch_inside(prefix + "attn.", block.attn, attention_inside, ATTENTION_INSIDE)
        self.on_output(block.attn, lambda module, args, out: self.visit(prefix + "hook_attn_out", out))
        self.on_input(block.ln2, lambda module, args: (self.resid_mid(i, args[0]), *args[1:]))
        self.watch_layer_norm(prefix + "ln2.", block.ln2)
        self.watch_inside(prefix + "mlp.", block.mlp, mlp_inside, ("hook_pre", "hook_post"))
        self.on_output(block.mlp, lambda module, args, out: self.visit(prefix + "hook_mlp_out", out))
        self.on_output(block, lambda module, args, out: self.visit(prefix + "hook_resid_post", self.resid_post(i, out)))

    def resid_mid(self, i: int, resid_mid: Tensor) -> Tensor:
        """ln2 reads resid_mid: hook it there. A replacement must also reach the block's own sum
        resid_mid + mlp_out, which ln2 cannot change: the difference is added to the block's output."""
        changed = self.visit(f"blocks.{i}.hook_resid_mid", resid_mid)
        if changed is not resid_mid:
            self.resid_mid_change[i] = changed - resid_mid
        return changed

    def resid_post(self, i: int, out: Tensor) -> Tensor:
        change = self.resid_mid_change.pop(i, None)
        return out if change is None else out + change

    def watch_layer_norm(self, prefix: str, ln: nn.Module) -> None:
        self.watch_inside(prefix, ln, layer_norm_inside, ("hook_scale", "hook_normalized"))

    def watch_inside(self, prefix: str, module: nn.Module, inside, names: tuple[str, ...]) -> None:
        """Record what `module` computes inside; when a hook changes any of it, the module's output
        is recomputed from the changed activations (otherwise the module's own output stays)."""
        def hook(module, args, out):
            if not self.hooked_inside(prefix, names) and not any(self.names_filter(prefix + name) for name in names):
                return out
            recomputed = inside(module, args[0], lambda name, value: self.visit(prefix + name, value))
            return recomputed if self.hooked_inside(prefix, names) else out
        self.on_output(module, hook)


def run_with_cache(model: nn.Module, tokens: Tensor, *, names_filter: "Callable[[str], bool] | None" = None,
                   fwd_hooks: Iterable[tuple[str, Hook]] = ()) -> tuple[Tensor, ActivationCache]:
    """(logits, cache): every activation of a forward pass on tokens, by name (hook_names lists them)."""
    cache = ActivationCache()
    with Lens(model, fwd_hooks, cache, names_filter):
        logits = model(tokens)
    return logits, cache


def run_with_hooks(model: nn.Module, tokens: Tensor, fwd_hooks: Iterable[tuple[str, Hook]] = ()) -> Tensor:
    """The logits of a forward pass on tokens in which each hook (name, fn) may read or replace its activation."""
    with Lens(model, fwd_hooks, cache=None, names_filter=lambda name: False):
        return model(tokens)


def component_labels(n_layers: int, n_heads: int) -> list[str]:
    """Names of the residual stream's components, in the order katas/interp/residual_stack.py stacks
    them: the two embeddings, then per layer each head ("L1H3": layer 1, head 3), the attention's
    bias b_O, and the MLP."""
    labels = ["embed", "pos_embed"]
    for layer in range(n_layers):
        labels += [f"L{layer}H{head}" for head in range(n_heads)] + [f"L{layer} b_O", f"L{layer} MLP"]
    return labels
