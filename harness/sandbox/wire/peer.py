"""The peer: one side of the wire, the same on both. It sends requests, serves the other side's
requests (callbacks) while it waits, and joins autograd across the two processes."""
import itertools
import socket
import struct
import weakref
from collections import OrderedDict

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from harness import devices
from harness.sandbox.wire.codec import _Decoder, _Encoder
from harness.sandbox.wire.framing import PeerClosed, ProtocolError, receive_message, send_message
from harness.sandbox.wire.sync import _global_rng_shared, _Shared, _signature, _tensor_shared

MAX_GRAPHS = 32  # forward passes whose autograd graph is kept for a later backward()


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
                context = header.get("context") or {}
                _apply_context(context)
                with torch.set_grad_enabled(bool(header.get("grad", True))), devices.one_device(context.get("one_device") is True):
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
        if op not in _OPERATIONS:
            raise ProtocolError(f"unknown request {op!r}")
        if op in ("getattr", "setattr") and self.side == 0 and str(request["name"]).startswith("_"):
            # The learner's code may use what a test handed it, not walk the checker's objects
            # (obj.__globals__, __class__, __dict__, a bound method's __self__...).
            raise AttributeError(f"{request['name']!r}: private attributes of the checker's objects are out of reach")
        return _OPERATIONS[op](target, request)

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


# What the other side may ask of an object it holds a stand-in for (besides call, load and backward).
_OPERATIONS = {
    "getattr": lambda target, request: getattr(target, request["name"]),
    "setattr": lambda target, request: setattr(target, request["name"], request["value"]),
    "getitem": lambda target, request: target[request["key"]],
    "setitem": lambda target, request: target.__setitem__(request["key"], request["value"]),
    "len": lambda target, request: len(target),
    "list": lambda target, request: list(target),
    "repr": lambda target, request: repr(target),
    "bool": lambda target, request: bool(target),
}


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
    """Settings of the caller that the callee runs under: the same thread count, run-time type checks and
    device strictness (harness.devices)."""
    import jaxtyping

    return {"threads": torch.get_num_threads(), "typecheck": not jaxtyping.config.jaxtyping_disable, "one_device": devices.active()}


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

