"""Shared state: tensors, generators, the global random state, module modes and objects that both
sides hold a copy of. Each message carries what its sender changed since the last one."""
import torch
from torch import nn

from harness.config import Config


def _fingerprint(tensor: torch.Tensor):
    """What must match for two copies of a tensor to be the same: placement and bytes."""
    if tensor.device.type == "meta":
        return ("meta", tensor.dtype, tuple(tensor.shape))
    return (tensor.device, tensor.dtype, tuple(tensor.shape), tensor.stride())


def _same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.device.type == "meta":
        return True
    if a.numel() == 0:
        return True
    return torch.equal(a.detach().contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


class _Shared:
    """One tensor (or generator, or the global random state) that both sides hold a copy of."""

    is_object = False

    def __init__(self, read, write, *, obj=None, track_grad: bool = False):
        self.read, self.write, self.obj, self.track_grad = read, write, obj, track_grad
        self.tensor = obj if isinstance(obj, torch.Tensor) else None
        self.last = None  # what the other side is known to hold
        self.last_grad = None

    def remember(self) -> None:
        value = self.read()
        self.last = (_fingerprint(value), value.detach().clone())
        if self.track_grad:
            grad = self.tensor.grad
            self.last_grad = None if grad is None else (_fingerprint(grad), grad.detach().clone())

    def changed(self) -> bool:
        value = self.read()
        return self.last is None or self.last[0] != _fingerprint(value) or not _same_bytes(value, self.last[1])

    def grad_changed(self) -> bool:
        if not self.track_grad:
            return False
        grad = self.tensor.grad
        if grad is None or self.last_grad is None:
            return (grad is None) != (self.last_grad is None)
        return self.last_grad[0] != _fingerprint(grad) or not _same_bytes(grad, self.last_grad[1])


class _SharedObject:
    """An object of a class both sides hold: its attributes are kept the same on both sides (its
    tensors are shared tensors of their own, compared here by identity)."""

    is_object = True
    tensor = None
    track_grad = False

    def __init__(self, obj):
        self.obj = obj
        self.last = None

    def remember(self) -> None:
        self.last = _signature(vars(self.obj))

    def changed(self) -> bool:
        return self.last != _signature(vars(self.obj))

    def grad_changed(self) -> bool:
        return False


def _signature(value):
    """What an attribute's value is, for noticing a change: tensors by identity, the rest by value."""
    if isinstance(value, (torch.Tensor, torch.Generator)) or not isinstance(value, (type(None), bool, int, float, str, list, tuple,
                                                                                     dict, Config, torch.dtype, torch.device)):
        return ("object", id(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_signature(each) for each in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(key), _signature(each)) for key, each in value.items()))
    return (type(value).__name__, repr(value))


def _tensor_shared(tensor: torch.Tensor, track_grad: bool) -> _Shared:
    def write(value):
        with torch.no_grad():
            if _fingerprint(value)[:3] == _fingerprint(tensor)[:3] and tensor.device.type != "meta":
                try:
                    tensor.copy_(value)
                    return
                except RuntimeError:  # e.g. a view that autograd does not let us write into
                    pass
            tensor.data = value
    return _Shared(lambda: tensor, write, obj=tensor, track_grad=track_grad)


def _generator_shared(generator: torch.Generator) -> _Shared:
    return _Shared(generator.get_state, generator.set_state, obj=generator)


def _global_rng_shared() -> _Shared:
    return _Shared(torch.get_rng_state, torch.set_rng_state)


def _modes_shared(module: nn.Module) -> _Shared:
    """The training flags of a module and its submodules, as a bool tensor."""
    modules = list(module.modules())

    def write(value):
        for each, flag in zip(modules, value.tolist()):
            each.training = bool(flag)
    return _Shared(lambda: torch.tensor([each.training for each in modules]), write)

