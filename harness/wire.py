"""The wire between the checker and a kata's worker: values as JSON, tensors as safetensors, never pickle.

When a kata is graded, the learner's code runs in a worker process and the suites in the checker.
Either side may call the other: the checker calls the learner's function or builds the learner's
module; the learner's code calls back a model, an optimizer or a callback that a test passed in.
So both sides run the same `Peer` over one inherited socket, and nothing that crosses it can run
code when it is read:

- plain values (None, bools, numbers, strings, lists, tuples, dicts, slices), dtypes, devices and
  `Config` cross by value, as JSON;
- tensors cross as safetensors bytes and are then *shared*: each side keeps its copy, and every
  message carries the shared tensors that its sender changed (in place, `.data`, `.to()`, or a new
  `.grad`), so an in-place write on either side is seen on the other, as it would be in one process;
- torch.Generator states and the global random state are shared the same way;
- objects of the classes both sides hold (the reference solutions of the katas the kata under
  test builds on, e.g. a KVCache) are shared too: the receiver makes an instance of its own copy
  of the class, and every message carries the attributes that changed on either side;
- modules whose classes both sides hold (the reference GPT-2 and its parts, when the kata under test
  is not one of them) are rebuilt on the receiving side from their class, attributes, parameters and
  buffers (shared tensors): a reference model handed to the learner's generate runs in the worker
  at full speed; forward hooks on it (a test counting positions) are called back where they live;
- optimizers cross as stand-ins that are also instances of their torch class (type checks pass);
- anything else (a module, a KV cache, a function, a training log) stays where it was made and
  crosses as a handle: the other side gets a stand-in that forwards every call, attribute read
  and write. A module's stand-in is a real nn.Module holding copies of its parameters and buffers
  (so optimizers, state_dict and load_state_dict work on it), and a forward through it joins
  autograd on both sides: backward() sends the gradients back across.
- exceptions cross as their type's name, message and the learner's part of the traceback, and are
  raised again as a subclass of the same builtin type (ValueError stays a ValueError).
"""
import builtins
import itertools
import json
import socket
import struct
import traceback
import weakref
from collections import OrderedDict
from dataclasses import fields

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from harness.config import Config

_HEADER = struct.Struct("!QQ")  # JSON bytes, tensor bytes
MAX_MESSAGE = 2 * 2**30  # GPT-2 small with its gradients fits (1 GB); anything larger is refused, not read
MAX_GRAPHS = 32  # forward passes whose autograd graph is kept for a later backward()


class PeerClosed(ConnectionError):
    """The other side went away (it crashed, was killed, or closed the connection)."""


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid message."""


class RemoteError(Exception):
    """An exception raised on the other side. Subclasses also derive from the builtin type it had."""

    remote_type = "Exception"
    remote_traceback = ""
    origin = None  # the other side's handle for the exception object this one stands for
    learner_line = None  # (file, line number, line) of the deepest frame in the learner's file, if any


# ---------------------------------------------------------------- framing


def send_message(sock: socket.socket, header: dict, blob: bytes = b"") -> None:
    data = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    sock.sendall(_HEADER.pack(len(data), len(blob)) + data + blob)


def receive_message(sock: socket.socket) -> tuple[dict, bytes]:
    sizes = _receive_exactly(sock, _HEADER.size)
    header_size, blob_size = _HEADER.unpack(sizes)
    if header_size + blob_size > MAX_MESSAGE:
        raise ProtocolError(f"a message of {header_size + blob_size} bytes")
    header = json.loads(_receive_exactly(sock, header_size))
    if not isinstance(header, dict):
        raise ProtocolError("a message that is not a JSON object")
    return header, _receive_exactly(sock, blob_size)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:], size - got)
        if count == 0:
            raise PeerClosed("the other side closed the connection")
        got += count
    return bytes(buffer)


# ---------------------------------------------------------------- shared state


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


# ---------------------------------------------------------------- the peer


class Peer:
    """One side of the wire. `side` is 0 for the checker, 1 for the worker: ids never collide."""

    def __init__(self, sock: socket.socket, side: int, *, is_learner_frame=lambda filename: False):
        self.sock = sock
        self.side = side
        self.is_learner_frame = is_learner_frame
        self._ids = itertools.count(2 + side, 2)
        self.objects: dict[int, object] = {}  # handle -> our object that the other side holds a stand-in for
        self._handle_of: dict[int, int] = {}  # id(our object) -> handle
        self.proxies = weakref.WeakValueDictionary()  # handle -> our stand-in for the other side's object
        self.shared: dict[int, _Shared] = {0: _global_rng_shared()}  # sent with the first message, then when it changes
        self._shared_of: dict[int, int] = {}  # id(tensor or generator) -> shared id
        self._scoped: list[list[int]] = []  # shared ids made during each call in progress, released after it
        self._released: list[int] = []  # handles and shared ids whose stand-ins are gone
        self.graphs: "OrderedDict[int, tuple]" = OrderedDict()  # forward passes kept for backward()
        self.exports: dict = {}  # what the other side may ask for by name ("load")
        self.shareable: dict[str, type] = {}  # name -> a class whose objects are shared, not handled (both sides agree)
        self.rebuildable: dict[str, type] = {}  # name -> a module class whose objects are rebuilt on the other side
        self.rebuilt: dict[int, tuple] = {}  # id(our rebuilt module or submodule) -> (its handle, path)
        self._rebuilt_roots: dict[int, nn.Module] = {}  # handle -> our rebuilt module (kept alive while the owner's is)
        self._forwarded_hooks: dict[int, list] = {}  # handle -> hooks registered on our rebuilt copy
        self._slots: list[tuple] = []  # (module, "_parameters" or "_buffers", name, shared id) of shared modules
        self.alive = True

    # ---------------------------------------------------------------- requests

    def request(self, op: str, **fields):
        """Ask the other side to do `op`; serve its requests (callbacks) until it answers."""
        if not self.alive:
            raise PeerClosed("the worker is gone")
        self._scoped.append([])
        answered = False
        try:
            self._send({"kind": "request", "op": op, "grad": torch.is_grad_enabled(), "context": _context(), **fields})
            while True:
                header, blob = self._receive()
                if header.get("kind") == "request":
                    self._serve(header, blob)
                    continue
                answered = True
                value = self._decode_body(header, blob)
                if header.get("kind") == "error":
                    raise value
                return value
        finally:
            if not answered:
                self.alive = False  # interrupted mid-conversation (a time limit, a crash): the wire is out of step
            self._end_scope()

    def invoke(self, target, args: tuple, kwargs: dict, parameters=()):
        """Call the other side's `target`, joining autograd when it is recording: a backward()
        here sends the gradients there and brings back those of our tensors that took part."""
        grad_inputs = [t for t in _tensors_in((args, kwargs)) if t.requires_grad]
        grad_inputs += [p for p in parameters if p.requires_grad and not any(p is t for t in grad_inputs)]
        recording = torch.is_grad_enabled() and bool(grad_inputs)
        answer = self.request("call", target=target, args=args, kwargs=kwargs, grad_inputs=grad_inputs if recording else [])
        output, graph, grad_outputs = answer["output"], answer["graph"], answer["grad_outputs"]
        originals = _containers(args, kwargs)
        for key, value in answer.get("changed_arguments", []):
            original = originals.get(key if isinstance(key, str) else int(key))
            if isinstance(original, dict) and isinstance(value, dict):
                original.clear()
                original.update(value)
            elif isinstance(original, list) and isinstance(value, list):
                original[:] = value
        if graph is None:
            return output
        attached = _AcrossTheWire.apply(self, graph, len(grad_outputs), *grad_outputs, *grad_inputs)
        swap = {id(old): new for old, new in zip(grad_outputs, attached)}
        return _replace_tensors(output, swap)

    def serve_forever(self) -> None:
        """The worker's main loop: answer the checker until it says goodbye or goes away."""
        while True:
            header, blob = self._receive()
            if header.get("kind") != "request":
                raise ProtocolError(f"expected a request, got {header.get('kind')!r}")
            if header.get("op") == "goodbye":
                return
            self._serve(header, blob)

    def _serve(self, header: dict, blob: bytes) -> None:
        self._scoped.append([])
        try:
            try:
                request = self._decode_body(header, blob)
                _apply_context(header.get("context") or {})
                with torch.set_grad_enabled(bool(header.get("grad", True))):
                    result = self._perform(header["op"], request)
                self._send({"kind": "result"}, value=result)
            except (PeerClosed, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # the learner's code raised: the other side re-raises it
                self._send({"kind": "error"}, error=error)
        finally:
            self._end_scope()

    def _perform(self, op: str, request: dict):
        target = request.get("target")
        if op == "call":
            return self._call(target, request)
        if op == "load":
            return self.exports[request["name"]]()
        if op == "backward":
            return self._backward(request)
        if op in ("getattr", "setattr") and self.side == 0 and str(request["name"]).startswith("_"):
            # The learner's code may use what a test handed it, not walk the checker's objects
            # (obj.__globals__, __class__, __dict__, a bound method's __self__...).
            raise AttributeError(f"{request['name']!r}: private attributes of the checker's objects are out of reach")
        if op == "getattr":
            return getattr(target, request["name"])
        if op == "setattr":
            setattr(target, request["name"], request["value"])
            return None
        if op == "getitem":
            return target[request["key"]]
        if op == "setitem":
            target[request["key"]] = request["value"]
            return None
        if op == "len":
            return len(target)
        if op == "list":
            return list(target)
        if op == "repr":
            return repr(target)
        if op == "bool":
            return bool(target)
        raise ProtocolError(f"unknown request {op!r}")

    # ---------------------------------------------------------------- autograd across the wire

    def _call(self, target, request: dict) -> dict:
        inputs = request["grad_inputs"]  # our copies of the caller's tensors that require grad
        containers = _containers(request["args"], request["kwargs"])
        before = {key: _signature(value) for key, value in containers.items()}
        output = target(*request["args"], **request["kwargs"])
        # A list or dict argument changed in place (a state dict popped from) changes the caller's too.
        changed = {key: value for key, value in containers.items() if _signature(value) != before[key]}
        outputs = [t for t in _tensors_in(output) if t.requires_grad and t.grad_fn is not None]
        graph = None
        if outputs and inputs:
            graph = next(self._ids)
            self.graphs[graph] = (outputs, inputs)
            while len(self.graphs) > MAX_GRAPHS:
                self.graphs.popitem(last=False)
        return {"output": output, "graph": graph, "grad_outputs": outputs if graph is not None else [],
                "changed_arguments": [[key, value] for key, value in changed.items()]}

    def _backward(self, request: dict):
        graph = self.graphs.get(request["graph"])
        if graph is None:
            raise RuntimeError("backward() through a forward pass made long ago: its graph was freed "
                               f"(only the last {MAX_GRAPHS} are kept)")
        outputs, inputs = graph
        pairs = [(o, g) for o, g in zip(outputs, request["grads"]) if g is not None]
        if not pairs:
            return [None] * len(inputs)
        with torch.enable_grad():
            return list(torch.autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs],
                                            retain_graph=True, allow_unused=True))

    # ---------------------------------------------------------------- messages

    def _send(self, header: dict, *, value=None, error: "BaseException | None" = None, **_) -> None:
        tensors: dict[str, torch.Tensor] = {}
        encoder = _Encoder(self, tensors)
        body = {}
        if header["kind"] == "request":
            body = {key: encoder.encode(header.pop(key)) for key in list(header) if key not in ("kind", "op", "grad", "context")}
        elif error is not None:
            body = {"error": encoder.error(error)}
        else:
            body = {"value": encoder.encode(value)}
        header["body"] = body
        header["sync"] = encoder.sync()
        header["release"], self._released = self._released, []
        blob = save_tensors(tensors) if tensors else b""
        send_message(self.sock, header, blob)

    def _receive(self) -> tuple[dict, bytes]:
        try:
            return receive_message(self.sock)
        except (OSError, struct.error) as error:
            self.alive = False
            raise PeerClosed(str(error) or type(error).__name__) from error
        except (ValueError, ProtocolError):
            self.alive = False
            raise

    def _decode_body(self, header: dict, blob: bytes):
        tensors = load_tensors(blob) if blob else {}
        decoder = _Decoder(self, tensors)
        for handle in header.get("release", []):
            self._release(handle)
        decoder.apply_sync(header.get("sync", []))
        body = header.get("body", {})
        if header.get("kind") == "request":
            return {key: decoder.decode(value) for key, value in body.items()}
        if header.get("kind") == "error":
            return decoder.error(body["error"])
        return decoder.decode(body.get("value"))

    def _end_scope(self) -> None:
        for sid in self._scoped.pop():
            self._unshare(sid)

    def _unshare(self, sid: int) -> None:
        entry = self.shared.pop(sid, None)
        if entry is not None and entry.obj is not None and self._shared_of.get(id(entry.obj)) == sid:
            del self._shared_of[id(entry.obj)]

    def _release(self, handle: int) -> None:
        obj = self.objects.pop(handle, None)
        if obj is not None and self._handle_of.get(id(obj)) == handle:
            del self._handle_of[id(obj)]
        self._unshare(handle)

    # ---------------------------------------------------------------- bookkeeping for the codec

    def handle_for(self, obj) -> int:
        handle = self._handle_of.get(id(obj))
        if handle is None or self.objects.get(handle) is not obj:
            handle = next(self._ids)
            self.objects[handle] = obj
            self._handle_of[id(obj)] = handle
        return handle

    def share(self, obj, entry: _Shared, *, scoped: bool) -> int:
        sid = next(self._ids)
        self.shared[sid] = entry
        self._shared_of[id(obj)] = sid
        if scoped and self._scoped:
            self._scoped[-1].append(sid)
        return sid

    def shared_id(self, obj) -> "int | None":
        sid = self._shared_of.get(id(obj))
        entry = self.shared.get(sid) if sid is not None else None
        return sid if entry is not None and entry.obj is obj else None

    def add_slot(self, module: nn.Module, kind: str, name: str, sid: int) -> None:
        self._slots.append((weakref.ref(module), kind, name, sid))

    def follow_slots(self) -> None:
        """A module's parameter or buffer may be a new tensor object now (module.to("meta") makes new
        Parameters): share the new one under the old id, so the other side gets it whole."""
        for ref, kind, name, sid in self._slots:
            module, entry = ref(), self.shared.get(sid)
            current = getattr(module, kind).get(name) if module is not None else None
            if entry is None or current is None or current is entry.obj:
                continue
            if self._shared_of.get(id(entry.obj)) == sid:
                del self._shared_of[id(entry.obj)]
            self.shared[sid] = _tensor_shared(current, current.is_leaf and current.requires_grad)
            self._shared_of[id(current)] = sid

    def replace_in_slots(self, sid: int, value: torch.Tensor) -> None:
        """The other side's tensor became one that ours cannot be turned into in place (another kind of
        device): put a new one in the module's slot, as module.to() does."""
        entry = self.shared[sid]
        old = entry.obj
        new = nn.Parameter(value, requires_grad=old.requires_grad) if isinstance(old, nn.Parameter) else value
        for ref, kind, name, slot_sid in self._slots:
            module = ref()
            if slot_sid == sid and module is not None:
                getattr(module, kind)[name] = new
        if self._shared_of.get(id(old)) == sid:
            del self._shared_of[id(old)]
        self.shared[sid] = _tensor_shared(new, new.is_leaf and new.requires_grad)
        self._shared_of[id(new)] = sid

    def forget_stand_in(self, handle: int, sids: list[int]) -> None:
        """A stand-in was garbage collected: forget its copies, and tell the other side at the next message."""
        for sid in sids:
            self._unshare(sid)
        self._released.append(handle)
        self._released.extend(sids)

    def keep_stand_in(self, handle: int) -> None:
        """A handle arrived again before our release of it left: the release no longer holds."""
        if handle in self._released:
            self._released.remove(handle)


class _AcrossTheWire(torch.autograd.Function):
    """Joins a forward pass made on the other side to this side's autograd graph."""

    @staticmethod
    def forward(ctx, peer, graph, n_outputs, *tensors):
        ctx.peer, ctx.graph, ctx.n_inputs = peer, graph, len(tensors) - n_outputs
        return tuple(t.detach().clone() for t in tensors[:n_outputs])

    @staticmethod
    def backward(ctx, *grads):
        answer = ctx.peer.request("backward", graph=ctx.graph, grads=list(grads))
        return (None, None, None, *([None] * len(grads)), *answer)


def _context() -> dict:
    """Settings of the caller that the callee runs under: the same thread count and run-time type checks."""
    import jaxtyping

    return {"threads": torch.get_num_threads(), "typecheck": not jaxtyping.config.jaxtyping_disable}


def _apply_context(context: dict) -> None:
    import jaxtyping

    threads = context.get("threads")
    if isinstance(threads, int) and 0 < threads <= 64 and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    typecheck = context.get("typecheck")
    if isinstance(typecheck, bool) and typecheck == jaxtyping.config.jaxtyping_disable:
        jaxtyping.config.update("jaxtyping_disable", not typecheck)


def _containers(args: tuple, kwargs: dict) -> dict:
    """The lists and dicts among a call's arguments, by position (an int) or keyword (a str)."""
    found = {number: value for number, value in enumerate(args) if type(value) in (list, dict, OrderedDict)}
    found.update({name: value for name, value in kwargs.items() if type(value) in (list, dict, OrderedDict)})
    return found


def _tensors_in(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for each in value for t in _tensors_in(each)]
    if isinstance(value, dict):
        return [t for each in value.values() for t in _tensors_in(each)]
    return []


def _replace_tensors(value, swap: dict):
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replace_tensors(each, swap) for each in value)
    if isinstance(value, list):
        return [_replace_tensors(each, swap) for each in value]
    if isinstance(value, dict):
        return {key: _replace_tensors(each, swap) for key, each in value.items()}
    return value


# ---------------------------------------------------------------- encoding


_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.uint8, torch.bool)}
_TORCH_CONTAINERS = {"ModuleList": nn.ModuleList, "Sequential": nn.Sequential, "ModuleDict": nn.ModuleDict}


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
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if type(value) is int else int(value)
        if isinstance(value, float):
            return {"$": "float", "v": repr(float(value))}
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.Size):
            return {"$": "size", "items": list(value)}
        if isinstance(value, list):
            return [self.encode(each) for each in value]
        if type(value) is tuple:
            return {"$": "tuple", "items": [self.encode(each) for each in value]}
        if type(value) in (dict, OrderedDict):
            return {"$": "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, torch.dtype):
            return {"$": "dtype", "name": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$": "device", "name": str(value)}
        if isinstance(value, slice):
            return {"$": "slice", "items": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}
        if value is Ellipsis:
            return {"$": "ellipsis"}
        if type(value) is Config:
            return {"$": "config", "fields": {f.name: self.encode(getattr(value, f.name)) for f in fields(Config)}}
        if isinstance(value, torch.Generator):
            return self.generator(value)
        if isinstance(value, (RemoteModule, RemoteObject)):
            if value._peer is self.peer:
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

    def shared_object(self, obj, name: str):
        sid = self.peer.shared_id(obj)
        if sid is not None:
            return {"$": "object", "sid": sid}
        entry = _SharedObject(obj)
        sid = self.peer.share(obj, entry, scoped=True)
        entry.remember()
        return {"$": "object", "sid": sid, "class": name, "state": self.encode(dict(vars(obj)))}

    def generator(self, generator: torch.Generator):
        sid = self.peer.shared_id(generator)
        if sid is not None:
            return {"$": "generator", "sid": sid}
        entry = _generator_shared(generator)
        sid = self.peer.share(generator, entry, scoped=True)
        entry.remember()
        return {"$": "generator", "sid": sid, "device": str(generator.device), "state": self._blob(generator.get_state())}

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
            "message": str(error),
            "traceback": getattr(error, "remote_traceback", "") or "".join(traceback.format_list(learner)),
            "learner_line": [learner[-1].filename, learner[-1].lineno, learner[-1].line] if learner else
            getattr(error, "learner_line", None),
            "origin": origin,
            "handle": handle,
        }


def _shareable_name(peer: Peer, value) -> "str | None":
    for name, cls in peer.shareable.items():
        if type(value) is cls:
            return name
    return None


def _builtin_base(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception) and cls is not RemoteError:
            return cls.__name__
    return "Exception"


# ---------------------------------------------------------------- decoding


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
        kind = value.get("$")
        if kind == "float":
            return float(value["v"])
        if kind == "tensor":
            return self.tensor(value)
        if kind == "tuple":
            return tuple(self.decode(each) for each in value["items"])
        if kind == "size":
            return torch.Size([int(each) for each in value["items"]])
        if kind == "dict":
            return {self.decode(k): self.decode(v) for k, v in value["items"]}
        if kind == "dtype":
            return _dtype(value["name"])
        if kind == "device":
            return _device(value["name"])
        if kind == "slice":
            return slice(*(self.decode(each) for each in value["items"]))
        if kind == "ellipsis":
            return Ellipsis
        if kind == "config":
            return Config(**{key: self.decode(each) for key, each in value["fields"].items()})
        if kind == "generator":
            return self.generator(value)
        if kind == "object":
            return self.shared_object(value)
        if kind == "yours":
            obj = self.peer.objects.get(value["id"])
            if obj is None:
                raise ProtocolError("a handle to an object that is gone")
            return obj.get_submodule(value["path"]) if value.get("path") else obj
        if kind == "ref":
            return self._stand_in(value["id"], lambda: _remote_object(self.peer, value))
        if kind == "module":
            if value.get("rebuild"):
                return self.rebuilt_module(value)
            return self._stand_in(value["id"], lambda: _build_remote_module(self, value))
        raise ProtocolError(f"unknown value kind {kind!r}")

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
        error = remote_error_class(value["type"], value.get("builtin", "Exception"))(value["message"])
        error.remote_traceback = value.get("traceback", "")
        error.learner_line = tuple(value["learner_line"]) if value.get("learner_line") else None
        error.origin = value.get("handle")
        return error


def _dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ProtocolError(f"unknown dtype {name!r}")
    return _DTYPES[name]


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type not in ("cpu", "cuda", "meta", "mps"):
        raise ProtocolError(f"unknown device {name!r}")
    return device


_error_classes: dict[tuple[str, str], type] = {}


def remote_error_class(name: str, builtin: str) -> type:
    """A RemoteError that is also the builtin exception type the original had (ValueError, ...)."""
    key = (name, builtin)
    if key not in _error_classes:
        base = getattr(builtins, builtin, Exception)
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = Exception
        special = _special_error_base(name)
        bases = tuple(dict.fromkeys(b for b in (special, base, RemoteError) if b is not None))
        bases = tuple(b for b in bases if not any(other is not b and issubclass(other, b) for other in bases)) or (RemoteError,)
        _error_classes[key] = type(name, bases, {"remote_type": name, "__module__": "learner"})
    return _error_classes[key]


def _special_error_base(name: str) -> "type | None":
    """Errors the checker recognises by type: the stub's, a kata file that does not import, a shape check."""
    if name == "TypeCheckError":
        from jaxtyping import TypeCheckError
        return TypeCheckError
    if name == "KataImportError":
        from harness.loader import KataImportError
        return KataImportError
    return None


# ---------------------------------------------------------------- stand-ins


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


def _build_remote_module(decoder: _Decoder, value: dict) -> nn.Module:
    peer, handle = decoder.peer, value["id"]
    modules: dict[str, nn.Module] = {}
    sids = []
    for entry in value["tree"]:
        if entry["type"] in _TORCH_CONTAINERS:
            module = _TORCH_CONTAINERS[entry["type"]]()
        else:
            module = RemoteModule(peer, handle, entry["path"], entry["type"])
        for name, encoded in entry["params"].items():
            encoded = {**encoded, "persistent_owner": True}
            module.register_parameter(name, decoder.tensor(encoded))
            peer.add_slot(module, "_parameters", name, encoded["sid"])
            sids.append(encoded["sid"])
        for name, encoded in entry["buffers"].items():
            encoded = {**encoded, "persistent_owner": True}
            module.register_buffer(name, decoder.tensor(encoded), persistent=name in entry["persistent"])
            peer.add_slot(module, "_buffers", name, encoded["sid"])
            sids.append(encoded["sid"])
        modules[entry["path"]] = module
    for entry in value["tree"]:
        parent = modules[entry["path"]]
        for name in entry["children"]:
            child_path = f"{entry['path']}.{name}" if entry["path"] else name
            parent.add_module(name, modules[child_path])
    for module in modules.values():
        if isinstance(module, RemoteModule):
            object.__setattr__(module, "_ready", True)
    root = modules[""]
    for module, flag in zip(root.modules(), value["modes"]):
        module.training = flag
    modes = _modes_shared(root)
    peer.shared[-handle] = modes
    modes.remember()
    weakref.finalize(root, peer.forget_stand_in, handle, sids + [-handle])
    return root


def _rebuild_module(decoder: _Decoder, value: dict) -> nn.Module:
    """Our own instance of the other side's module: same classes (ours), attributes, and shared parameters."""
    peer, handle = decoder.peer, value["id"]
    modules: dict[str, nn.Module] = {}
    for entry in value["tree"]:
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
        for name, encoded in entry["params"].items():
            module.register_parameter(name, decoder.tensor({**encoded, "persistent_owner": True}))
            peer.add_slot(module, "_parameters", name, encoded["sid"])
        for name, encoded in entry["buffers"].items():
            module.register_buffer(name, decoder.tensor({**encoded, "persistent_owner": True}), persistent=name in entry["persistent"])
            peer.add_slot(module, "_buffers", name, encoded["sid"])
        modules[entry["path"]] = module
        peer.rebuilt[id(module)] = (handle, entry["path"])
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
