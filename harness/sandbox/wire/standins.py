"""Stand-ins for what lives on the other side (an object, a module), and modules rebuilt on this
side from the other side's description (one walk over the module tree for both)."""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from torch import nn

from harness.sandbox.wire.framing import ProtocolError
from harness.sandbox.wire.sync import _modes_shared

if TYPE_CHECKING:
    from harness.sandbox.wire.codec import _Decoder
    from harness.sandbox.wire.peer import Peer

_TORCH_CONTAINERS = {"ModuleList": nn.ModuleList, "Sequential": nn.Sequential, "ModuleDict": nn.ModuleDict}


class RemoteObject:
    """Stands in for an object that lives on the other side: every use is a request."""

    def __init__(self, peer: Peer, handle: int, is_callable: bool, type_name: str):
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_callable", is_callable)
        object.__setattr__(self, "_type_name", type_name)
        weakref.finalize(self, peer.forget_stand_in, handle, [])

    def __call__(self, *args, **kwargs):
        return self._peer.invoke(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._peer.request("getattr", target=self, name=name)

    def __setattr__(self, name: str, value) -> None:
        self._peer.request("setattr", target=self, name=name, value=value)

    def __getitem__(self, key):
        return self._peer.request("getitem", target=self, key=key)

    def __setitem__(self, key, value) -> None:
        self._peer.request("setitem", target=self, key=key, value=value)

    def __len__(self) -> int:
        return self._peer.request("len", target=self)

    def __iter__(self):
        return iter(self._peer.request("list", target=self))

    def __bool__(self) -> bool:
        return self._peer.request("bool", target=self)

    def __repr__(self) -> str:
        try:
            return self._peer.request("repr", target=self)
        except Exception:  # noqa: BLE001 - a repr must not fail
            return f"<{self._type_name} in the worker>"


class RemoteModule(nn.Module):
    """Stands in for a module on the other side: same submodules, parameters and buffers (copies,
    kept in sync), same training flags; its forward runs the real module there."""

    def __init__(self, peer: Peer, handle: int, path: str, type_name: str):
        super().__init__()
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_ready", False)  # attributes are asked of the other side once it is built

    def forward(self, *args, **kwargs):
        return self._peer.invoke(self, args, kwargs, parameters=list(self.parameters()))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_") or not self.__dict__.get("_ready"):
                raise
            return self._peer.request("getattr", target=self, name=name)

    def extra_repr(self) -> str:
        return f"{self._type_name}, in the worker"


def _assemble(decoder: _Decoder, value: dict, make) -> nn.Module:
    """The one walk over a module tree that the other side described: `make(entry)` makes each
    module; its parameters and buffers become shared tensors in its slots; children are attached
    and training flags set as they are there, and the flags are shared from then on."""
    peer, handle = decoder.peer, value["id"]
    modules: dict[str, nn.Module] = {}
    for entry in value["tree"]:
        module = make(entry)
        for name, encoded in entry["params"].items():
            module.register_parameter(name, decoder.tensor({**encoded, "persistent_owner": True}))
            peer.add_slot(module, "_parameters", name, encoded["sid"])
        for name, encoded in entry["buffers"].items():
            module.register_buffer(name, decoder.tensor({**encoded, "persistent_owner": True}), persistent=name in entry["persistent"])
            peer.add_slot(module, "_buffers", name, encoded["sid"])
        modules[entry["path"]] = module
    for entry in value["tree"]:
        for name in entry["children"]:
            child = f"{entry['path']}.{name}" if entry["path"] else name
            if child in modules:
                modules[entry["path"]].add_module(name, modules[child])
    root = modules[""]
    for module, flag in zip(root.modules(), value["modes"]):
        module.training = flag
    modes = _modes_shared(root)
    peer.shared[-handle] = modes
    modes.remember()
    return root


def _shared_ids(value: dict) -> list:
    return [encoded["sid"] for entry in value["tree"] for kind in ("params", "buffers") for encoded in entry[kind].values()]


def _build_remote_module(decoder: _Decoder, value: dict) -> nn.Module:
    """A stand-in for the other side's module: its forward runs there, its tensors are shared copies."""
    peer, handle = decoder.peer, value["id"]

    def make(entry: dict) -> nn.Module:
        if entry["type"] in _TORCH_CONTAINERS:
            return _TORCH_CONTAINERS[entry["type"]]()
        return RemoteModule(peer, handle, entry["path"], entry["type"])

    root = _assemble(decoder, value, make)
    for module in root.modules():
        if isinstance(module, RemoteModule):
            object.__setattr__(module, "_ready", True)  # from now on, unknown attributes are asked of the other side
    weakref.finalize(root, peer.forget_stand_in, handle, _shared_ids(value) + [-handle])
    return root


def _rebuild_module(decoder: _Decoder, value: dict) -> nn.Module:
    """Our own instance of the other side's module: same classes (ours), attributes, and shared parameters."""
    peer, handle = decoder.peer, value["id"]

    def make(entry: dict) -> nn.Module:
        if entry["type"] in _TORCH_CONTAINERS and entry.get("class") is None:
            module = _TORCH_CONTAINERS[entry["type"]]()
        else:
            cls = peer.rebuildable.get(entry.get("class"))
            if cls is None:
                raise ProtocolError(f"a module of a class this side cannot rebuild: {entry.get('class')!r}")
            module = cls.__new__(cls)
            nn.Module.__init__(module)
            for name, attr in entry.get("attrs", {}).items():
                setattr(module, name, decoder.decode(attr))
        peer.rebuilt[id(module)] = (handle, entry["path"])
        return module

    root = _assemble(decoder, value, make)
    peer._rebuilt_roots[handle] = root
    return root


_TORCH_TYPES = ("torch.optim.",)  # classes a stand-in may also be an instance of (for type checks)


def _torch_type_name(value) -> "str | None":
    for cls in type(value).__mro__:
        if cls.__module__.startswith(_TORCH_TYPES):
            return f"{cls.__module__}:{cls.__qualname__}"
    return None


def _remote_object(peer: Peer, value: dict) -> "RemoteObject":
    cls = _torch_class(value.get("torch_type"))
    if cls is None:
        return RemoteObject(peer, value["id"], value["callable"], value["type"])
    typed = _typed_stand_ins.get(cls)
    if typed is None:
        typed = _typed_stand_ins[cls] = type(f"Remote{cls.__name__}", (_TypedRemoteObject, cls), {})
    obj = object.__new__(typed)
    RemoteObject.__init__(obj, peer, value["id"], value["callable"], value["type"])
    return obj


def _torch_class(name: "str | None") -> "type | None":
    if not name or not name.startswith(_TORCH_TYPES):
        return None
    import importlib

    module_name, _, qualname = name.partition(":")
    try:
        cls = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) else None


_typed_stand_ins: dict[type, type] = {}
_OWN_ATTRIBUTES = frozenset({"_peer", "_handle", "_callable", "_type_name"})


class _TypedRemoteObject(RemoteObject):
    """A stand-in that is also an instance of its object's torch class: every attribute comes from
    the other side, none from the class."""

    def __getattribute__(self, name: str):
        if name in _OWN_ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
            return object.__getattribute__(self, name)
        return object.__getattribute__(self, "_peer").request("getattr", target=self, name=name)
