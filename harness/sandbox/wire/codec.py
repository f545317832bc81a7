"""The codec: every value as JSON, every tensor as a key into the message's safetensors blob."""
from __future__ import annotations

import traceback
from collections import OrderedDict
from dataclasses import fields
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.config import Config
from harness.sandbox.wire.errors import RemoteError, _builtin_base, remote_error_class
from harness.sandbox.wire.framing import ProtocolError
from harness.sandbox.wire.standins import (
    _TORCH_CONTAINERS,
    RemoteModule,
    RemoteObject,
    _build_remote_module,
    _rebuild_module,
    _remote_object,
    _torch_type_name,
)
from harness.sandbox.wire.sync import _generator_shared, _modes_shared, _SharedObject, _tensor_shared
from harness.untrusted import identifier

if TYPE_CHECKING:
    from harness.sandbox.wire.peer import Peer

_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.uint8, torch.bool)}


class _Encoder:
    def __init__(self, peer: Peer, tensors: dict):
        self.peer, self.tensors = peer, tensors

    def _blob(self, tensor: torch.Tensor) -> "str | None":
        if tensor.device.type == "meta":
            return None
        key = str(len(self.tensors))
        self.tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
        return key

    def encode(self, value):
        return getattr(self, _encoding_of(type(value)))(value)

    # One method per row of _ENCODINGS (below the class).
    def _plain(self, value):
        return value

    def _int(self, value):
        return value if type(value) is int else int(value)

    def _float(self, value):
        return {"$": "float", "v": repr(float(value))}

    def _size(self, value):
        return {"$": "size", "items": list(value)}

    def _list(self, value):
        return [self.encode(each) for each in value]

    def _tuple(self, value):
        return {"$": "tuple", "items": [self.encode(each) for each in value]}

    def _dict(self, value):
        return {"$": "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}

    def _dtype(self, value):
        return {"$": "dtype", "name": str(value).removeprefix("torch.")}

    def _device(self, value):
        return {"$": "device", "name": str(value)}

    def _slice(self, value):
        return {"$": "slice", "items": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}

    def _ellipsis(self, value):
        return {"$": "ellipsis"}

    def _config(self, value):
        return {"$": "config", "fields": {f.name: self.encode(getattr(value, f.name)) for f in fields(Config)}}

    def _object(self, value):
        """Anything else: the other side's own object back, a module, a shared object, or a handle."""
        if isinstance(value, (RemoteModule, RemoteObject)) and value._peer is self.peer:
            return {"$": "yours", "id": value._handle, "path": value._path if isinstance(value, RemoteModule) else ""}
        if id(value) in self.peer.rebuilt:
            handle, path = self.peer.rebuilt[id(value)]
            if self.peer._rebuilt_roots.get(handle) is not None:
                return {"$": "yours", "id": handle, "path": path}
        if isinstance(value, nn.Module):
            return self.module(value)
        name = _shareable_name(self.peer, value)
        if name is not None:
            return self.shared_object(value, name)
        return {"$": "ref", "id": self.peer.handle_for(value), "callable": callable(value),
                "type": type(value).__name__, "torch_type": _torch_type_name(value)}

    def tensor(self, tensor: torch.Tensor):
        sid = self.peer.shared_id(tensor)
        if sid is not None:
            return {"$": "tensor", "sid": sid}
        track_grad = tensor.is_leaf and tensor.requires_grad
        sid = self.peer.share(tensor, _tensor_shared(tensor, track_grad), scoped=True)
        return {"$": "tensor", "sid": sid, **self._tensor_data(tensor, sid)}

    def _tensor_data(self, tensor: torch.Tensor, sid: int) -> dict:
        entry = self.peer.shared[sid]
        entry.remember()
        data = {"blob": self._blob(tensor), "dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
                "device": str(tensor.device), "requires_grad": tensor.requires_grad,
                "parameter": isinstance(tensor, nn.Parameter), "leaf": tensor.is_leaf}
        if entry.track_grad and tensor.grad is not None:
            data["grad"] = self._blob(tensor.grad)
        return data

    def _share_once(self, obj, kind: str, make_entry) -> "tuple[dict, bool]":
        """`obj` by its shared id; and whether this is the first time it is sent (then its state goes too)."""
        sid = self.peer.shared_id(obj)
        if sid is not None:
            return {"$": kind, "sid": sid}, False
        entry = make_entry(obj)
        sid = self.peer.share(obj, entry, scoped=True)
        entry.remember()
        return {"$": kind, "sid": sid}, True

    def shared_object(self, obj, name: str):
        encoded, first = self._share_once(obj, "object", _SharedObject)
        return {**encoded, "class": name, "state": self.encode(dict(vars(obj)))} if first else encoded

    def generator(self, generator: torch.Generator):
        encoded, first = self._share_once(generator, "generator", _generator_shared)
        return {**encoded, "device": str(generator.device), "state": self._blob(generator.get_state())} if first else encoded

    def module(self, module: nn.Module):
        handle = self.peer.handle_for(module)
        modes = self.peer.shared.get(-handle)  # a module's training flags are shared under minus its handle
        known = modes is not None
        if modes is None:
            modes = _modes_shared(module)
            self.peer.shared[-handle] = modes
        names = {cls: name for name, cls in self.peer.rebuildable.items()}
        rebuild = all(type(each) in names or type(each) in _TORCH_CONTAINERS.values() for each in module.modules())
        encoded = {"$": "module", "id": handle, "rebuild": rebuild}
        if rebuild:
            encoded["hooks"] = self._hooks(module)
        if known:
            return encoded
        tree = []
        for path, each in module.named_modules():
            entry = {"path": path, "type": type(each).__name__, "class": names.get(type(each)), "params": {}, "buffers": {},
                     "children": [name for name, _ in each.named_children()]}
            for name, param in each.named_parameters(recurse=False):
                entry["params"][name] = self._persistent(param)
                self.peer.add_slot(each, "_parameters", name, entry["params"][name]["sid"])
            for name, buffer in each.named_buffers(recurse=False):
                entry["buffers"][name] = self._persistent(buffer)
                self.peer.add_slot(each, "_buffers", name, entry["buffers"][name]["sid"])
            entry["persistent"] = [name for name in entry["buffers"] if name not in each._non_persistent_buffers_set]
            if rebuild:
                entry["attrs"] = {name: self.encode(value) for name, value in vars(each).items()
                                  if not name.startswith("_") and name != "training"}
            tree.append(entry)
        modes.remember()
        return {**encoded, "tree": tree, "modes": [each.training for each in module.modules()]}

    def _hooks(self, module: nn.Module) -> list:
        """The forward hooks on a module that is rebuilt on the other side: called back from there."""
        hooks = []
        for path, each in module.named_modules():
            for key, hook in each._forward_hooks.items():
                hooks.append({"path": path, "hook": self.encode(hook), "kwargs": key in each._forward_hooks_with_kwargs})
        return hooks

    def _persistent(self, tensor: torch.Tensor):
        sid = self.peer.shared_id(tensor)
        if sid is not None:
            return {"$": "tensor", "sid": sid}
        sid = self.peer.share(tensor, _tensor_shared(tensor, tensor.is_leaf and tensor.requires_grad), scoped=False)
        return {"$": "tensor", "sid": sid, **self._tensor_data(tensor, sid)}

    def sync(self) -> list:
        self.peer.follow_slots()
        changes = []
        # Objects first: their state may share new tensors, which must not be compared before they exist.
        entries = sorted(self.peer.shared.items(), key=lambda item: not item[1].is_object)
        for sid, entry in entries:
            value_changed, grad_changed = entry.changed(), entry.grad_changed()
            if not (value_changed or grad_changed):
                continue
            change = {"sid": sid}
            if entry.is_object:
                entry.remember()
                change["state"] = self.encode(dict(vars(entry.obj)))
                changes.append(change)
                continue
            if value_changed:
                value = entry.read()
                change.update(blob=self._blob(value), dtype=str(value.dtype).removeprefix("torch."), shape=list(value.shape),
                              device=str(value.device))
            if grad_changed:
                grad = entry.tensor.grad
                change["grad"] = None if grad is None else {"blob": self._blob(grad), "device": str(grad.device)}
            entry.remember()
            changes.append(change)
        return changes

    def error(self, error: BaseException) -> dict:
        origin = getattr(error, "origin", None) if isinstance(error, RemoteError) else None
        # The checker keeps its own exceptions (a pytest.fail in a callback): if one comes back
        # through the learner's code, it is raised again as itself.
        handle = self.peer.handle_for(error) if origin is None and self.peer.side == 0 else None
        frames = traceback.extract_tb(error.__traceback__)
        learner = [frame for frame in frames if self.peer.is_learner_frame(frame.filename)]
        return {
            "type": type(error).__name__ if not isinstance(error, RemoteError) else error.remote_type,
            "builtin": _builtin_base(error),
            "message": _message(error),
            "traceback": getattr(error, "remote_traceback", "") or "".join(traceback.format_list(learner)),
            "learner_line": [learner[-1].filename, learner[-1].lineno, learner[-1].line] if learner else
            getattr(error, "learner_line", None),
            "origin": origin,
            "handle": handle,
        }


# How each type of value is encoded: the first row whose test its type passes (so a bool is
# plain, not an int; a torch.Size is a size, not a tuple; a tuple subclass is an object).
_ENCODINGS = (
    (lambda t: t is type(None) or issubclass(t, (bool, str)), "_plain"),
    (lambda t: issubclass(t, int), "_int"),
    (lambda t: issubclass(t, float), "_float"),
    (lambda t: issubclass(t, torch.Tensor), "tensor"),
    (lambda t: issubclass(t, torch.Size), "_size"),
    (lambda t: issubclass(t, list), "_list"),
    (lambda t: t is tuple, "_tuple"),
    (lambda t: t in (dict, OrderedDict), "_dict"),
    (lambda t: issubclass(t, torch.dtype), "_dtype"),
    (lambda t: issubclass(t, torch.device), "_device"),
    (lambda t: issubclass(t, slice), "_slice"),
    (lambda t: t is type(Ellipsis), "_ellipsis"),
    (lambda t: t is Config, "_config"),
    (lambda t: issubclass(t, torch.Generator), "generator"),
)
_encoding_by_type: dict[type, str] = {}


def _encoding_of(cls: type) -> str:
    if cls not in _encoding_by_type:
        _encoding_by_type[cls] = next((method for test, method in _ENCODINGS if test(cls)), "_object")
    return _encoding_by_type[cls]


def _message(error: BaseException) -> str:
    """The text the error was raised with: a KeyError's str() quotes its message (KeyError('a') says
    "'a'"), so raising str() again on the other side would quote it twice."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def _shareable_name(peer: Peer, value) -> "str | None":
    for name, cls in peer.shareable.items():
        if type(value) is cls:
            return name
    return None



class _Decoder:
    def __init__(self, peer: Peer, tensors: dict):
        self.peer, self.tensors = peer, tensors

    def _from_blob(self, key, dtype: str, shape: list, device: str) -> torch.Tensor:
        dtype = _dtype(dtype)
        if key is None:
            return torch.empty(shape, dtype=dtype, device="meta")
        tensor = self.tensors[key]
        if tensor.dtype != dtype or list(tensor.shape) != list(shape):
            raise ProtocolError("a tensor whose bytes do not match its description")
        return tensor.to(_device(device))

    def decode(self, value):
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, list):
            return [self.decode(each) for each in value]
        if not isinstance(value, dict):
            raise ProtocolError(f"cannot decode {type(value).__name__}")
        method = _DECODINGS.get(value.get("$"))
        if method is None:
            raise ProtocolError(f"unknown value kind {value.get('$')!r}")
        return getattr(self, method)(value)

    # One method per entry of _DECODINGS (below the class).
    def _float(self, value: dict):
        return float(value["v"])

    def _tuple(self, value: dict):
        return tuple(self.decode(each) for each in value["items"])

    def _size(self, value: dict):
        return torch.Size([int(each) for each in value["items"]])

    def _dict(self, value: dict):
        return {self.decode(k): self.decode(v) for k, v in value["items"]}

    def _dtype(self, value: dict):
        return _dtype(value["name"])

    def _device(self, value: dict):
        return _device(value["name"])

    def _slice(self, value: dict):
        return slice(*(self.decode(each) for each in value["items"]))

    def _ellipsis(self, value: dict):
        return Ellipsis

    def _config(self, value: dict):
        return Config(**{key: self.decode(each) for key, each in value["fields"].items()})

    def _yours(self, value: dict):
        obj = self.peer.objects.get(value["id"])
        if obj is None:
            raise ProtocolError("a handle to an object that is gone")
        return obj.get_submodule(value["path"]) if value.get("path") else obj

    def _ref(self, value: dict):
        return self._stand_in(value["id"], lambda: _remote_object(self.peer, value))

    def _module(self, value: dict):
        if value.get("rebuild"):
            return self.rebuilt_module(value)
        return self._stand_in(value["id"], lambda: _build_remote_module(self, value))

    def rebuilt_module(self, value: dict) -> nn.Module:
        handle = value["id"]
        root = self.peer._rebuilt_roots.get(handle)
        if root is None:
            if "tree" not in value:
                raise ProtocolError("a module sent as known that this side never rebuilt")
            root = _rebuild_module(self, value)
        for removable in self.peer._forwarded_hooks.pop(handle, []):
            removable.remove()
        forwarded = []
        for hook in value.get("hooks", []):
            target = root.get_submodule(hook["path"])
            forwarded.append(target.register_forward_hook(self.decode(hook["hook"]), with_kwargs=hook["kwargs"]))
        self.peer._forwarded_hooks[handle] = forwarded
        return root

    def _stand_in(self, handle: int, build):
        self.peer.keep_stand_in(handle)
        existing = self.peer.proxies.get(handle)
        if existing is None:
            existing = build()
            self.peer.proxies[handle] = existing
        return existing

    def tensor(self, value: dict) -> torch.Tensor:
        sid = value["sid"]
        entry = self.peer.shared.get(sid)
        if entry is not None and "blob" not in value:
            return entry.tensor
        if "blob" not in value:
            raise ProtocolError("a shared tensor that was never sent")
        tensor = self._from_blob(value["blob"], value["dtype"], value["shape"], value["device"])
        if value.get("parameter"):
            tensor = nn.Parameter(tensor, requires_grad=value["requires_grad"])
        elif value["requires_grad"] and tensor.is_floating_point():
            tensor.requires_grad_(True)
        if value.get("grad") is not None:
            tensor.grad = self.tensors[value["grad"]].to(tensor.device)
        entry = _tensor_shared(tensor, tensor.is_leaf and tensor.requires_grad)
        self.peer.shared[sid] = entry
        self.peer._shared_of[id(tensor)] = sid
        if not value.get("persistent_owner") and self.peer._scoped:
            self.peer._scoped[-1].append(sid)
        entry.remember()
        return tensor

    def generator(self, value: dict) -> torch.Generator:
        entry = self.peer.shared.get(value["sid"])
        if entry is not None and "state" not in value:
            return entry.obj
        generator = torch.Generator(_device(value["device"]))
        generator.set_state(self.tensors[value["state"]])
        entry = _generator_shared(generator)
        self.peer.shared[value["sid"]] = entry
        self.peer._shared_of[id(generator)] = value["sid"]
        if self.peer._scoped:
            self.peer._scoped[-1].append(value["sid"])
        entry.remember()
        return generator

    def shared_object(self, value: dict):
        entry = self.peer.shared.get(value["sid"])
        if entry is not None and "state" not in value:
            return entry.obj
        cls = self.peer.shareable.get(value.get("class"))
        if cls is None:
            raise ProtocolError(f"an object of a class this side does not share: {value.get('class')!r}")
        obj = cls.__new__(cls)
        entry = _SharedObject(obj)
        self.peer.shared[value["sid"]] = entry
        self.peer._shared_of[id(obj)] = value["sid"]
        if self.peer._scoped:
            self.peer._scoped[-1].append(value["sid"])
        vars(obj).update(self._state(value["state"]))
        entry.remember()
        return obj

    def _state(self, encoded) -> dict:
        state = self.decode(encoded)
        if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
            raise ProtocolError("an object's state that is not a dict of attributes")
        return state

    def apply_sync(self, changes: list) -> None:
        for change in changes:
            entry = self.peer.shared.get(change["sid"])
            if entry is None:
                continue  # released on this side meanwhile
            if entry.is_object:
                state = self._state(change["state"])
                vars(entry.obj).clear()
                vars(entry.obj).update(state)
                entry.remember()
                continue
            if "blob" in change:
                value = self._from_blob(change["blob"], change["dtype"], change["shape"], change["device"])
                try:
                    entry.write(value)
                except RuntimeError:
                    self.peer.replace_in_slots(change["sid"], value)
                    entry = self.peer.shared[change["sid"]]
            if "grad" in change:
                grad = change["grad"]
                entry.tensor.grad = None if grad is None else self.tensors[grad["blob"]].to(_device(grad["device"]))
            entry.remember()

    def error(self, value: dict) -> BaseException:
        origin = value.get("origin")
        if origin is not None and isinstance(self.peer.objects.get(origin), BaseException):
            return self.peer.objects.pop(origin)
        error = remote_error_class(identifier(value["type"]), identifier(value.get("builtin", "Exception")))(value["message"])
        error.remote_traceback = value.get("traceback", "")
        error.learner_line = tuple(value["learner_line"]) if value.get("learner_line") else None
        error.origin = value.get("handle")
        return error


# Each encoded kind ("$") and the _Decoder method that decodes it.
_DECODINGS = {"float": "_float", "tensor": "tensor", "tuple": "_tuple", "size": "_size", "dict": "_dict", "dtype": "_dtype",
              "device": "_device", "slice": "_slice", "ellipsis": "_ellipsis", "config": "_config", "generator": "generator",
              "object": "shared_object", "yours": "_yours", "ref": "_ref", "module": "_module"}


def _dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ProtocolError(f"unknown dtype {name!r}")
    return _DTYPES[name]


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type not in ("cpu", "cuda", "meta", "mps"):
        raise ProtocolError(f"unknown device {name!r}")
    return device


