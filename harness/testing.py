"""Shared helpers for the kata suites: what is under test, oracles, and teaching asserts.

Every check reports in the same order: type, then shape (with axis names), then dtype, then
NaNs, then values (the largest difference and where it is), then a hint.
"""
import math
from dataclasses import dataclass
from functools import lru_cache

import hypothesis.strategies as st
import pytest
import torch
from torch import Tensor, nn

from harness import isolation, loader, manifest
from harness.config import Config

# ---------------------------------------------------------------- what is under test


class UnderTest:
    """The kata under test, loaded lazily at the first call so that a broken file fails
    that kata's tests (with a message naming the file) rather than their collection."""

    def __init__(self, kata_id: str):
        self.kata = manifest.get(kata_id)

    def __call__(self, *args, **kwargs):
        if isolation.active():  # the learner's code runs in the kata's worker, never in this process
            return isolation.call_under_test(self.kata, args, kwargs)
        return loader.load_under_test(self.kata)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kata.symbol} from {self.kata.relative(loader.source_under_test(self.kata))}>"


def under_test(kata_id: str) -> UnderTest:
    return UnderTest(kata_id)


def reference(kata_id: str):
    return loader.load_reference(manifest.get(kata_id))


def stuck(kata_id: str) -> str:
    return f"Stuck? kata hint {kata_id}"


# ---------------------------------------------------------------- teaching asserts


def _advice(kata: str, hint: str = "") -> str:
    return "\n".join(line for line in (hint, stuck(kata)) if line)


def check_shape(
    actual, shape: tuple, dtype: torch.dtype, *, kata: str, what: str, axes: str = "", device=None, hint: str = ""
) -> None:
    """Assert the type, shape, dtype (and device) of `actual`."""
    __tracebackhide__ = True
    advice = _advice(kata, hint)
    if not isinstance(actual, Tensor):
        pytest.fail(f"{what} should be a torch.Tensor, got {type(actual).__name__}.\n{advice}", pytrace=False)
    if tuple(actual.shape) != tuple(shape):
        named = f" = ({', '.join(axes.split())})" if axes else ""
        pytest.fail(
            f"{what} has the wrong shape: expected {tuple(shape)}{named}, got {tuple(actual.shape)}.\n{advice}",
            pytrace=False,
        )
    if actual.dtype != dtype:
        pytest.fail(f"{what} has dtype {actual.dtype}, expected {dtype}.\n{advice}", pytrace=False)
    if device is not None and actual.device != device:
        pytest.fail(f"{what} is on {actual.device}, expected {device}.\n{advice}", pytrace=False)


def check_tensor(
    actual,
    expected: Tensor,
    *,
    kata: str,
    what: str,
    axes: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    hint: str = "",
) -> None:
    """Assert that `actual` equals `expected`: type, shape, dtype, NaNs, then values."""
    __tracebackhide__ = True
    check_shape(actual, expected.shape, expected.dtype, kata=kata, what=what, axes=axes, device=expected.device, hint=hint)
    advice = _advice(kata, hint)
    new_nans = actual.isnan() & ~expected.isnan()
    if new_nans.any():
        where = tuple(new_nans.nonzero()[0].tolist())
        pytest.fail(
            f"{what} contains NaN ({int(new_nans.sum())} of {actual.numel()} values, first at index {where}) "
            f"where the expected values are finite.\n{advice}",
            pytrace=False,
        )
    torch.testing.assert_close(
        actual,
        expected,
        atol=atol,
        rtol=rtol,
        msg=lambda details: f"{what} has the wrong values.\n{details}\n{_worst_entry(actual, expected)}\n{advice}",
    )


def _worst_entry(actual: Tensor, expected: Tensor) -> str:
    """The entry that differs most. Equal values (infinities of the same sign included) differ by 0;
    a NaN on one side only, or infinities that differ, is the worst of all."""
    actual, expected = actual.detach().double(), expected.detach().double()
    difference = (actual - expected).abs()
    same = (actual == expected) | (actual.isnan() & expected.isnan())
    difference = difference.nan_to_num(nan=math.inf, posinf=torch.finfo(torch.float64).max)  # NaN > inf vs finite
    difference = torch.where(same, torch.zeros_like(difference), difference)
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    return f"At index {index}: expected {expected[index].item():.6g}, got {actual[index].item():.6g}."


def check_unchanged(before: Tensor, after: Tensor, *, kata: str, what: str) -> None:
    __tracebackhide__ = True
    if not torch.equal(before, after):
        pytest.fail(
            f"{what} was modified in place. Return a new tensor instead (e.g. masked_fill, not masked_fill_; "
            f"x = x + y, not x += y).\n{stuck(kata)}",
            pytrace=False,
        )


# ---------------------------------------------------------------- seeded data


def randn(*shape: int, seed: int, device="cpu", scale: float = 1.0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator)).to(device)


def random_tokens(batch: int, posn: int, d_vocab: int, *, seed: int, device="cpu") -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, d_vocab, (batch, posn), generator=generator).to(device)


@torch.no_grad()
def randomize_parameters_(module: nn.Module, seed: int, d_model: int) -> nn.Module:
    """Overwrite every parameter with seeded, non-zero random values.

    Default inits set biases to 0 and layer-norm scales to 1, which would hide a forgotten
    bias or scale. Matrices get std 1/sqrt(d_model), so activations keep a unit scale;
    layer-norm scales (1-D `w` or `weight`) 1 + noise; biases noise.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        noise = torch.randn(param.shape, generator=generator)
        if param.dim() >= 2:
            values = noise / math.sqrt(d_model)
        elif name.rsplit(".", 1)[-1] in ("w", "weight"):
            values = 1.0 + 0.2 * noise
        else:
            values = 0.2 * noise
        param.copy_(values.to(param.device, param.dtype))
    return module


def copy_parameters(destination: nn.Module, source: nn.Module, *, kata: str) -> None:
    """Give the learner's module the reference's parameters, by name."""
    __tracebackhide__ = True
    try:
        destination.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as error:
        pytest.fail(
            f"Your module's parameters do not match the kata's layout (keep __init__ as given):\n{error}\n{stuck(kata)}",
            pytrace=False,
        )


def module_like(kata_id: str, cfg: Config, source: nn.Module, *, device) -> nn.Module:
    """The module under test, in eval mode, holding `source`'s parameters."""
    module = under_test(kata_id)(cfg).to(device).eval()
    copy_parameters(module, source, kata=kata_id)
    return module


def matching_modules(kata_id: str, cfg: Config, *, seed: int, device) -> tuple[nn.Module, nn.Module]:
    """(the module under test, the reference), same random weights, in eval mode."""
    expected = randomize_parameters_(reference(kata_id)(cfg), seed, cfg.d_model).to(device).eval()
    return module_like(kata_id, cfg, expected, device=device), expected


# ---------------------------------------------------------------- configs

NAMED_CONFIGS = {
    "tiny": Config(d_model=8, n_heads=2, n_layers=1, d_vocab=11, n_ctx=8),
    "one_head": Config(d_model=12, n_heads=1, n_layers=2, d_vocab=17, n_ctx=10),
    "many_heads": Config(d_model=24, n_heads=4, n_layers=2, d_vocab=29, n_ctx=16),
}


@st.composite
def configs(draw, max_layers: int = 2) -> Config:
    n_heads = draw(st.integers(1, 4))
    d_head = draw(st.integers(1, 8))
    return Config(
        d_model=n_heads * d_head,
        n_heads=n_heads,
        n_layers=draw(st.integers(1, max_layers)),
        d_vocab=draw(st.integers(2, 40)),
        n_ctx=draw(st.integers(1, 12)),
    )


@st.composite
def configs_and_sizes(draw, max_layers: int = 2) -> tuple[Config, int, int]:
    """A config, a batch size and a sequence length (1 included) that fits its context."""
    cfg = draw(configs(max_layers))
    return cfg, draw(st.integers(1, 3)), draw(st.integers(1, cfg.n_ctx))


seeds = st.integers(0, 2**16)


@dataclass(frozen=True)
class AttentionSizes:
    batch: int
    query_pos: int
    key_pos: int
    n_heads: int
    d_head: int


@st.composite
def attention_sizes(draw, square: bool = True) -> AttentionSizes:
    """Sizes for the attention katas; query_pos == key_pos unless square=False."""
    query_pos = draw(st.integers(1, 8))
    return AttentionSizes(
        batch=draw(st.integers(1, 3)),
        query_pos=query_pos,
        key_pos=query_pos if square else draw(st.integers(1, 8)),
        n_heads=draw(st.integers(1, 4)),
        d_head=draw(st.integers(1, 8)),
    )


# ---------------------------------------------------------------- Hugging Face oracle


def hf_config(cfg: Config):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.d_vocab,
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp,
        activation_function="gelu_new",
        layer_norm_epsilon=cfg.layer_norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=cfg.d_vocab - 1,
        eos_token_id=cfg.d_vocab - 1,
    )


@lru_cache(maxsize=16)
def hf_gpt2(cfg: Config, seed: int, device: str = "cpu"):
    """Hugging Face's GPT2LMHeadModel with every parameter random and non-zero."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(hf_config(cfg)).eval()
    return randomize_parameters_(model, seed, cfg.d_model).to(device)


@lru_cache(maxsize=16)
def reference_gpt2(cfg: Config, seed: int, device: str = "cpu") -> nn.Module:
    """The reference GPT2 holding hf_gpt2(cfg, seed)'s weights."""
    model = reference("model.gpt2")(cfg).to(device).eval()
    reference("model.load_gpt2_weights")(model, hf_gpt2(cfg, seed, device).state_dict())
    return model


@torch.no_grad()
def hf_module_io(hf_model: nn.Module, submodule: nn.Module, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """What `submodule` of `hf_model` reads and returns during a forward pass on `tokens`."""
    captured = {}

    def hook(module, args, kwargs, output):
        captured["input"] = args[0] if args else kwargs["hidden_states"]
        captured["output"] = output[0] if isinstance(output, tuple) else output

    handle = submodule.register_forward_hook(hook, with_kwargs=True)
    try:
        hf_model(tokens)
    finally:
        handle.remove()
    return captured["input"], captured["output"]


# ---------------------------------------------------------------- sequence properties


@torch.no_grad()
def check_causal(run, inputs: Tensor, changed: Tensor, position: int, *, kata: str, what: str) -> None:
    """`changed` differs from `inputs` at `position` only: no output before it may change."""
    __tracebackhide__ = True
    check_tensor(run(changed)[:, :position], run(inputs)[:, :position], kata=kata,
                 what=f"{what} before position {position}, after changing the input at position {position},",
                 atol=1e-5, rtol=1e-5,
                 hint="An earlier position saw a later one: is the causal mask applied, to the right axis?")


@torch.no_grad()
def check_batch_independent(run, inputs: Tensor, *, kata: str, what: str) -> None:
    """Running a batch gives what running each sequence alone gives."""
    __tracebackhide__ = True
    alone = torch.cat([run(inputs[i : i + 1]) for i in range(inputs.shape[0])])
    check_tensor(run(inputs), alone, kata=kata, what=f"{what} for a batch, against each sequence run alone,",
                 atol=1e-5, rtol=1e-5, hint="Sequences in a batch must not mix: no sum or mean over the batch axis.")


# ---------------------------------------------------------------- checks shared by the suites


@torch.no_grad()
def check_matches_reference(kata: str, cfg: Config, inputs: Tensor, *, seed: int, device, what: str, axes: str = "",
                            atol: float = 1e-4, rtol: float = 1e-4, hint: str = "") -> None:
    """The module under test and the reference, given the same random weights and inputs, agree."""
    __tracebackhide__ = True
    module, expected = matching_modules(kata, cfg, seed=seed, device=device)
    check_tensor(module(inputs), expected(inputs), kata=kata, what=what, axes=axes, atol=atol, rtol=rtol, hint=hint)


@torch.no_grad()
def check_matches_hugging_face(kata: str, cfg: Config, tokens: Tensor, *, ours, theirs, device, what: str,
                               axes: str = "") -> None:
    """The module under test, holding the weights of `ours(reference GPT2)`, returns what the Hugging
    Face module `theirs(GPT2LMHeadModel)` returns on the hidden states it sees in a forward pass."""
    __tracebackhide__ = True
    module = module_like(kata, cfg, ours(reference_gpt2(cfg, 0, str(device))), device=device)
    hf = hf_gpt2(cfg, 0, str(device))
    hidden, expected = hf_module_io(hf, theirs(hf), tokens)
    check_tensor(module(hidden), expected, kata=kata, what=f"{what} vs Hugging Face's", axes=axes, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def check_inputs_unchanged(run, *inputs: Tensor, kata: str, what: str) -> None:
    """Calling `run` leaves every input as it was."""
    __tracebackhide__ = True
    before = [x.clone() for x in inputs]
    run(*inputs)
    for number, (old, new) in enumerate(zip(before, inputs), start=1):
        check_unchanged(old, new, kata=kata, what=f"{what}'s input {number}" if len(inputs) > 1 else f"{what}'s input")


# ---------------------------------------------------------------- sampling and generation


@dataclass(frozen=True)
class SamplingInputs:
    logits: Tensor  # (batch, d_vocab)
    tokens: Tensor  # (batch, seq): the sequence so far, with repeats


@st.composite
def sampling_inputs(draw, device="cpu") -> SamplingInputs:
    """Logits (sometimes with ties: small integers) and token sequences with repeated tokens."""
    batch, d_vocab, seq = draw(st.integers(1, 4)), draw(st.integers(2, 30)), draw(st.integers(1, 10))
    seed, ties = draw(seeds), draw(st.booleans())
    generator = torch.Generator().manual_seed(seed)
    if ties:
        logits = torch.randint(-3, 4, (batch, d_vocab), generator=generator).float()
    else:
        logits = 3.0 * torch.randn(batch, d_vocab, generator=generator)
    tokens = torch.randint(0, min(d_vocab, 6), (batch, seq), generator=generator)
    return SamplingInputs(logits.to(device), tokens.to(device))


def hf_as_model(hf):
    """A Hugging Face GPT2LMHeadModel as the plain `tokens -> logits` callable the katas take."""
    return lambda tokens: hf(tokens, use_cache=False).logits


def hf_generate(hf, prompt: Tensor, **options):
    """Hugging Face's generate() on `prompt`, with no cache (so its logits are computed as ours are)."""
    eos = options.get("eos_token_id")
    options.setdefault("use_cache", False)
    with torch.no_grad():
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=eos, **options)


# ---------------------------------------------------------------- the key-value cache


@st.composite
def prefill_and_chunks(draw, n_ctx: int, max_chunk: int = 4) -> tuple[int, list[int]]:
    """A prompt length and the sizes of the chunks fed after it, all fitting in n_ctx together."""
    prompt_len = draw(st.integers(1, n_ctx // 2))
    chunks = draw(st.lists(st.integers(1, max_chunk), min_size=1, max_size=6))
    fitting = [size for number, size in enumerate(chunks) if prompt_len + sum(chunks[: number + 1]) <= n_ctx]
    return prompt_len, fitting or [1]


class PositionCounter:
    """Counts the positions a GPT2 embeds, call by call (one entry per forward pass), through a
    hook on model.embed: how a test sees whether generation really feeds only the new tokens."""

    def __init__(self, model: nn.Module):
        self.calls: list[int] = []
        self._handle = model.embed.register_forward_hook(lambda module, args, output: self.calls.append(args[0].shape[1]))

    def __enter__(self) -> "PositionCounter":
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class ForwardCall:
    training: bool  # the model's mode during the call
    grad_enabled: bool  # whether autograd was recording
    batch: int


class ModeRecorder(nn.Module):
    """Wraps a model and records, for every forward call, its mode and whether autograd was on:
    how the training suites see that evaluation runs in eval mode under no_grad, and training not."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[ForwardCall] = []

    def forward(self, tokens: Tensor) -> Tensor:
        self.calls.append(ForwardCall(self.training, torch.is_grad_enabled(), tokens.shape[0]))
        return self.model(tokens)


def tiny_language_model(cfg: Config, seed: int, device="cpu") -> nn.Module:
    """The reference GPT2 with seeded, non-zero random weights, in training mode."""
    model = reference("model.gpt2")(cfg)
    return randomize_parameters_(model, seed, cfg.d_model).to(device).train()


# ---------------------------------------------------------------- gradients, dtypes and devices


def check_gradients(module: nn.Module, expected: nn.Module, *inputs, kata: str, what: str, seed: int = 0,
                    atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Backward through the module under test and the reference (same weights, same inputs): every
    parameter that learns in the reference gets a gradient, non-zero, and equal to the reference's.

    The loss is a seeded random weighting of the output (a plain .sum() gives a layer norm's
    scale no gradient at all). Parameters whose reference gradient is zero (attention's b_K: a
    constant added to every key does not change the softmax) are not checked.
    """
    __tracebackhide__ = True
    advice = stuck(kata)
    mine, theirs = dict(module.named_parameters()), dict(expected.named_parameters())
    for param in (*mine.values(), *theirs.values()):
        param.grad = None
    with torch.enable_grad():
        output = expected(*inputs)
        weights = randn(*output.shape, seed=seed, device=output.device).to(output.dtype)
        (output * weights).sum().backward()
        actual = module(*inputs)
        if not isinstance(actual, Tensor) or not actual.requires_grad:
            pytest.fail(f"{what} does not require grad: nothing it returns can train. Keep the computation "
                        f"differentiable: no .detach(), .data, .item() or torch.no_grad() in forward.\n{advice}", pytrace=False)
        check_shape(actual, output.shape, output.dtype, kata=kata, what=what)
        (actual * weights).sum().backward()
    for name, param in theirs.items():
        if param.grad is None or not param.grad.abs().max() > 1e-6:
            continue
        grad = mine[name].grad
        if grad is None:
            pytest.fail(f"No gradient reached {name}: {what} must stay differentiable with respect to it "
                        f"(no .detach(), .data, torch.no_grad() or a copy made with torch.tensor).\n{advice}", pytrace=False)
        if not grad.abs().max() > 0:
            pytest.fail(f"The gradient of {name} is zero everywhere: {name} does not take part in {what}.\n{advice}",
                        pytrace=False)
        check_tensor(grad, param.grad, kata=kata, what=f"The gradient of {name}", atol=atol, rtol=rtol,
                     hint=f"The forward uses {name} differently from the reference (or only part of it).")


def tokens_with_extremes(batch: int, posn: int, d_vocab: int, *, seed: int, device="cpu") -> Tensor:
    """Random token ids in which both 0 and the last id (d_vocab - 1) occur."""
    tokens = random_tokens(batch, posn, d_vocab, seed=seed)
    flat = tokens.view(-1)
    flat[0] = 0
    flat[-1] = d_vocab - 1
    return tokens.to(device)


OTHER_DTYPES = [torch.float64, torch.bfloat16]  # besides float32: where a hard-coded float32 shows

# float64 against the reference in float64; bfloat16 (3 significant digits) loosely: its test is
# mostly that the output stays bfloat16.
TOLERANCES = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-9, 1e-9), torch.bfloat16: (1e-1, 1e-1)}


def dtype_hint(dtype: torch.dtype) -> str:
    return (f"In {dtype}, every tensor you create (zeros, ones, full, arange, a mask value, a buffer) must take "
            f"its dtype from the inputs (dtype=x.dtype, torch.zeros_like(x), torch.finfo(x.dtype)): "
            f"never a hard-coded float32.")


DEVICE_HINT = ("The inputs were on the `meta` device (shapes and dtypes only): a tensor you created without "
               "device=... lands on the CPU and cannot be mixed with them. Create tensors with device=x.device "
               "(or torch.zeros_like(x), x.new_zeros(...)).")


def on_meta(run, *args, kata: str, what: str):
    """Call `run` with arguments on the meta device; a kata that creates a CPU tensor fails with a hint."""
    __tracebackhide__ = True
    try:
        return run(*args)
    except (RuntimeError, NotImplementedError) as error:
        if isinstance(error, NotImplementedError) and "meta" not in str(error):
            raise
        if "meta" not in str(error) and "device" not in str(error):
            raise
        pytest.fail(f"{what} failed on the meta device: {type(error).__name__}: {str(error).splitlines()[0]}\n"
                    f"{DEVICE_HINT}\n{stuck(kata)}", pytrace=False)


def check_module_in_dtype(kata: str, cfg: Config, inputs: Tensor, dtype: torch.dtype, *, what: str, axes: str = "",
                          seed: int = 0, device="cpu") -> None:
    """The module under test, converted with .to(dtype), returns `dtype` and the reference's values
    (the reference converted the same way; float inputs are converted too, token ids are not)."""
    __tracebackhide__ = True
    module, expected = matching_modules(kata, cfg, seed=seed, device=device)
    module, expected = module.to(dtype), expected.to(dtype)
    if inputs.is_floating_point():
        inputs = inputs.to(dtype)
    atol, rtol = TOLERANCES[dtype]
    with torch.no_grad():
        check_tensor(module(inputs), expected(inputs), kata=kata, what=f"{what} in {dtype}", axes=axes, atol=atol,
                     rtol=rtol, hint=dtype_hint(dtype))


def check_module_on_meta(kata: str, cfg: Config, inputs: Tensor, *, what: str, axes: str = "") -> None:
    """The module under test moved to the `meta` device (no GPU needed) runs there: its output is a
    meta tensor of the right shape and dtype. A kata that creates a tensor on the CPU whatever its
    inputs (torch.arange(n) with no device) fails here on every machine."""
    __tracebackhide__ = True
    module, expected = matching_modules(kata, cfg, seed=0, device="cpu")
    module, expected = module.to("meta"), expected.to("meta")
    inputs = inputs.to("meta")
    with torch.no_grad():
        out = on_meta(module, inputs, kata=kata, what=what)
        want = expected(inputs)
    check_shape(out, want.shape, want.dtype, kata=kata, what=f"{what} on the meta device", axes=axes, device=want.device,
                hint=DEVICE_HINT)


def check_function_on_meta(run, expected, *args, kata: str, what: str, **kwargs):
    """`run(*args)` with every tensor argument on the `meta` device returns what the reference's
    `expected(*args)` returns there: meta tensors of the same shapes and dtypes."""
    __tracebackhide__ = True
    args = tuple(arg.to("meta") if isinstance(arg, Tensor) else arg for arg in args)
    out = on_meta(lambda *a: run(*a, **kwargs), *args, kata=kata, what=what)
    want = expected(*args, **kwargs)
    for number, (mine, theirs) in enumerate(zip(out, want) if isinstance(want, tuple) else [(out, want)]):
        check_shape(mine, theirs.shape, theirs.dtype, kata=kata, what=f"{what} on the meta device", device=theirs.device,
                    hint=DEVICE_HINT)
    return out


def _in_dtype(value, dtype: torch.dtype):
    return value.to(dtype) if isinstance(value, Tensor) and value.is_floating_point() else value


def check_function_in_dtype(run, expected, *args, dtype: torch.dtype, kata: str, what: str, axes: str = "", **kwargs) -> None:
    """`run` and the reference `expected`, given the same arguments with every floating tensor in
    `dtype`, return the same: floating outputs stay in `dtype` (a hard-coded float32 shows)."""
    __tracebackhide__ = True
    args = tuple(_in_dtype(arg, dtype) for arg in args)
    kwargs = {key: _in_dtype(value, dtype) for key, value in kwargs.items()}
    want = expected(*args, **kwargs)
    out = run(*args, **kwargs)
    atol, rtol = TOLERANCES[dtype]
    pairs = zip(out, want) if isinstance(want, tuple) else [(out, want)]
    for mine, theirs in pairs:
        check_tensor(mine, theirs, kata=kata, what=f"{what} in {dtype}", axes=axes, atol=atol, rtol=rtol, hint=dtype_hint(dtype))


def check_new_tensor(out, inputs: Tensor, *, kata: str, what: str) -> None:
    """The docstring says "a new tensor": not the input itself, and no storage shared with it
    (even when the operation is the identity, such as a temperature of exactly 1)."""
    __tracebackhide__ = True
    if out is inputs:
        pytest.fail(f"{what} returned its input itself, not a new tensor: a caller that changes the result in place "
                    f"would change its logits too. Return a new tensor even when nothing changes (e.g. logits.clone()).\n"
                    f"{stuck(kata)}", pytrace=False)
    if isinstance(out, Tensor) and out.device.type != "meta" and out.numel() and \
            out.untyped_storage().data_ptr() == inputs.untyped_storage().data_ptr():
        pytest.fail(f"{what} returned a view of its input (they share memory), not a new tensor: writing into one "
                    f"writes into the other. Return a new tensor (e.g. .clone()).\n{stuck(kata)}", pytrace=False)


def diagnose(actual, known_mistakes: "list[tuple[Tensor, str]]", general: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> str:
    """The hint of the first known mistake whose output `actual` equals; otherwise `general`.

    A pitfall test gives its pitfall's hint only when it has recognised that mistake: a layer norm
    with the unbiased variance is not told to move eps inside the square root."""
    if not isinstance(actual, Tensor):
        return general
    for wrong, hint in known_mistakes:
        if isinstance(wrong, Tensor) and wrong.shape == actual.shape and wrong.dtype == actual.dtype and \
                torch.allclose(actual.detach(), wrong, atol=atol, rtol=rtol, equal_nan=True):
            return hint
    return general
