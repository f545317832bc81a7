"""One device at a time: the CPU stands in for a GPU in the device checks.

A tensor made on the CPU by mistake (an EOS list, a `finished` mask) fails on a GPU the moment it
meets the model's tensors, but not on the CPU, and on the meta device only in some operations
(torch.isin takes a CPU tensor beside a meta one without a word). While `one_device()` is active,
every torch call whose tensor arguments sit on two devices raises, as CUDA does. What CUDA allows
stays allowed: a CPU scalar (a 0-dimensional tensor) meets any device, indexing may take CPU
indices, and copies (copy_, to) move between devices.

The suites' meta checks (harness.testing.dtypes.on_meta) run under it; so does an isolated
worker while it serves a call made under it (the wire carries the setting: harness.sandbox.wire.peer).
"""
import contextlib

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

# What CUDA lets through between devices: indexing with CPU indices, and the copies themselves.
_MAY_MIX = {torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.copy_, torch.Tensor.to}
_depth = 0


class _OneDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _MAY_MIX:
            devices = {leaf.device for leaf in tree_leaves((args, kwargs))
                       if isinstance(leaf, torch.Tensor) and not (leaf.device.type == "cpu" and leaf.dim() == 0)}
            if len(devices) > 1:
                name = getattr(func, "__name__", str(func))
                raise RuntimeError(f"{name} got tensors on {' and '.join(sorted(str(device) for device in devices))}: "
                                   "on a GPU this is an error (Expected all tensors to be on the same device)")
        return func(*args, **kwargs)


def active() -> bool:
    return _depth > 0


@contextlib.contextmanager
def one_device(enabled: bool = True):
    """While open (and `enabled`), torch calls that mix devices raise, as on a GPU."""
    global _depth
    if not enabled:
        yield
        return
    _depth += 1
    try:
        with _OneDevice():
            yield
    finally:
        _depth -= 1
