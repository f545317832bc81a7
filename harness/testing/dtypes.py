"""Other dtypes (float64, bfloat16) and the `meta` device, each against the reference run the same way."""
import pytest
import torch
from torch import Tensor

from harness.config import Config
from harness.devices import one_device
from harness.testing import stuck
from harness.testing.asserts import check_shape, check_tensor
from harness.testing.oracles import matching_modules, reference_gpt2

OTHER_DTYPES = [torch.float64, torch.bfloat16]  # besides float32: where a hard-coded float32 shows


# float64 against the reference in float64; bfloat16 (3 significant digits) loosely: its test is
# mostly that the output stays bfloat16.
TOLERANCES = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-9, 1e-9), torch.bfloat16: (1e-1, 1e-1)}


def dtype_hint(dtype: torch.dtype) -> str:
    return (f"In {dtype}, every tensor you create (zeros, ones, full, arange, a mask value, a buffer) must take "
            f"its dtype from the inputs (dtype=x.dtype, torch.zeros_like(x), torch.finfo(x.dtype)): "
            f"never a hard-coded float32.")


def hint_in_dtype(dtype: torch.dtype, mine, theirs, right_in_float32, atol: float = 0.0, rtol: float = 0.0) -> str:
    """The dtype advice only where it fits: the output has another dtype, or the same computation in
    float32 is right (so only this dtype is wrong). Otherwise the values are wrong in any dtype, and
    the float32 tests' messages say why."""
    if not isinstance(mine, Tensor) or mine.dtype != theirs.dtype or mine.shape != theirs.shape:
        return dtype_hint(dtype)
    if torch.allclose(mine.detach().double(), theirs.detach().double(), atol=atol, rtol=rtol, equal_nan=True) or right_in_float32():
        return dtype_hint(dtype)  # right here (the hint is not shown), or wrong only in this dtype
    return (f"The values are wrong in float32 too: fix them first (the float32 tests say how); in {dtype} this test "
            "only shows the same mistake again.")


def _close_in_float32(run, expected, args, kwargs) -> bool:
    """Whether `run` gives the reference's values when the floating inputs are float32."""
    args = tuple(_in_dtype(arg, torch.float32) for arg in args)
    kwargs = {key: _in_dtype(value, torch.float32) for key, value in kwargs.items()}
    with torch.no_grad():
        out, want = run(*args, **kwargs), expected(*args, **kwargs)
    pairs = zip(out, want) if isinstance(want, tuple) else [(out, want)]
    atol, rtol = TOLERANCES[torch.float32]
    return all(isinstance(mine, Tensor) and mine.shape == theirs.shape and
               torch.allclose(mine.float(), theirs.float(), atol=atol, rtol=rtol, equal_nan=True) for mine, theirs in pairs)


DEVICE_HINT = ("The inputs were on the `meta` device (shapes and dtypes only): a tensor you created without "
               "device=... lands on the CPU and cannot be mixed with them. Create tensors with device=x.device "
               "(or torch.zeros_like(x), x.new_zeros(...)).")


def on_meta(run, *args, kata: str, what: str):
    """Call `run` with arguments on the meta device; a kata that creates a CPU tensor fails with a hint."""
    __tracebackhide__ = True
    try:
        with one_device():  # a CPU tensor meeting a meta one fails as it would on a GPU, even where meta lets it through
            return run(*args)
    except (RuntimeError, NotImplementedError) as error:
        if isinstance(error, NotImplementedError) and "meta" not in str(error):
            raise
        if "meta" not in str(error) and "device" not in str(error):
            raise
        pytest.fail(f"{what} failed on the meta device: {type(error).__name__}: {str(error).splitlines()[0]}\n"
                    f"{DEVICE_HINT}\n{stuck(kata)}", pytrace=False)


# What torch raises where a meta tensor's values would be needed (an `if finished.all()`, an int(eos[0])).
NEEDS_VALUES_ON_META = ("cannot be called on meta tensors", "Cannot copy out of meta tensor", "data-independent implementation")


def check_loop_on_meta(run, cfg: Config, *, kata: str, what: str):
    """`run(model, prompt)`, a generation loop given a reference GPT-2 of `cfg` and a (2, 3) prompt, both
    on the `meta` device, goes as far as meta can: to the end (its tensors on meta), or to its first
    step that needs values (which rows ended), where torch stops it. A tensor made on the CPU before
    then (an EOS list, a `finished` mask, the beams' scores) fails here on every machine, as it would
    on a GPU."""
    __tracebackhide__ = True
    model = reference_gpt2(cfg, 0).to("meta")
    prompt = torch.zeros(2, 3, dtype=torch.long, device="meta")

    def until_values_matter():
        try:
            return run(model, prompt)
        except (RuntimeError, NotImplementedError) as error:
            if any(words in str(error) for words in NEEDS_VALUES_ON_META):
                return None  # as far as meta goes
            raise

    out = on_meta(until_values_matter, kata=kata, what=what)
    if out is not None:
        for number, each in enumerate(out if isinstance(out, tuple) else [out]):
            if isinstance(each, Tensor):
                assert each.device.type == "meta", (f"{what}: output {number} is on {each.device}, though the model and "
                                                    f"the prompt were on the meta device.\n{DEVICE_HINT}\n{stuck(kata)}")
    return out


def check_caches_on_meta(monkeypatch, run, cfg: Config, *, kata: str, what: str, forward: str = "cached_forward") -> None:
    """check_loop_on_meta, and every KV cache handed to parts.<forward> on the meta device too: the cache
    is written only once values flow, so meta alone cannot show where it was made."""
    __tracebackhide__ = True
    from harness.testing.recorders import record_cache_devices

    devices = record_cache_devices(monkeypatch, kata, forward)
    check_loop_on_meta(run, cfg, kata=kata, what=what)
    assert devices and all(device == "meta" for device in devices), (
        f"the model was on the meta device; the KV caches handed to the forward passes were on: {devices or 'none was'}. "
        f"Make the cache on the model's device, in its dtype (device=next(model.parameters()).device).\n{stuck(kata)}")


def check_module_in_dtype(kata: str, cfg: Config, inputs: Tensor, dtype: torch.dtype, *, what: str, axes: str = "",
                          seed: int = 0, device="cpu") -> None:
    """The module under test, converted with .to(dtype), returns `dtype` and the reference's values
    (the reference converted the same way; float inputs are converted too, token ids are not)."""
    __tracebackhide__ = True
    module, expected = matching_modules(kata, cfg, seed=seed, device=device)

    def right_in_float32() -> bool:
        return _close_in_float32(module.float(), expected.float(), (inputs,), {})

    module, expected = module.to(dtype), expected.to(dtype)
    typed = inputs.to(dtype) if inputs.is_floating_point() else inputs
    atol, rtol = TOLERANCES[dtype]
    with torch.no_grad():
        mine, theirs = module(typed), expected(typed)
        check_tensor(mine, theirs, kata=kata, what=f"{what} in {dtype}", axes=axes, atol=atol, rtol=rtol,
                     hint=hint_in_dtype(dtype, mine, theirs, right_in_float32, atol, rtol))


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
    for mine, theirs in (zip(out, want) if isinstance(want, tuple) else [(out, want)]):
        check_shape(mine, theirs.shape, theirs.dtype, kata=kata, what=f"{what} on the meta device", device=theirs.device,
                    hint=DEVICE_HINT)
    return out


def _in_dtype(value, dtype: torch.dtype):
    return value.to(dtype) if isinstance(value, Tensor) and value.is_floating_point() else value


def check_function_in_dtype(run, expected, *args, dtype: torch.dtype, kata: str, what: str, axes: str = "", **kwargs) -> None:
    """`run` and the reference `expected`, given the same arguments with every floating tensor in
    `dtype`, return the same: floating outputs stay in `dtype` (a hard-coded float32 shows)."""
    __tracebackhide__ = True
    original_args, original_kwargs = args, kwargs
    args = tuple(_in_dtype(arg, dtype) for arg in args)
    kwargs = {key: _in_dtype(value, dtype) for key, value in kwargs.items()}
    want = expected(*args, **kwargs)
    out = run(*args, **kwargs)
    atol, rtol = TOLERANCES[dtype]
    pairs = zip(out, want) if isinstance(want, tuple) else [(out, want)]
    for mine, theirs in pairs:
        hint = hint_in_dtype(dtype, mine, theirs, lambda: _close_in_float32(run, expected, original_args, original_kwargs), atol, rtol)
        check_tensor(mine, theirs, kata=kata, what=f"{what} in {dtype}", axes=axes, atol=atol, rtol=rtol, hint=hint)
