"""The wire in one process: two peers over socket.socketpair(), the "worker" serving in a thread.
These run in about a second; tests/test_isolation.py checks the same paths end to end, with real workers."""
import json
import socket
import struct
import threading
from collections import OrderedDict

import pytest
import torch
from torch import nn

from harness.config import Config
from harness.sandbox import wire
from harness.sandbox.wire.framing import _HEADER


@pytest.fixture
def peers():
    """(checker, worker): the worker serves the functions in its `exports` until the checker closes."""
    ours, theirs = socket.socketpair()
    checker, worker = wire.Peer(ours, 0), wire.Peer(theirs, 1)
    thread = threading.Thread(target=lambda: _serve(worker), daemon=True)
    thread.start()
    yield checker, worker, thread
    wire.send_message(ours, {"kind": "request", "op": "goodbye", "body": {}, "sync": [], "release": []})
    thread.join(timeout=5)
    ours.close()
    theirs.close()


def _serve(peer):
    try:
        peer.serve_forever()
    except wire.PeerClosed:
        pass


def remote(peers, name, function):
    """The checker's stand-in for `function`, which lives on the worker's side."""
    checker, worker, _ = peers
    worker.exports[name] = lambda: function
    return checker.request("load", name=name)


# ---------------------------------------------------------------- framing

def test_a_message_arrives_whole():
    a, b = socket.socketpair()
    wire.send_message(a, {"kind": "result", "n": 1}, b"\x00\x01")
    assert wire.receive_message(b) == ({"kind": "result", "n": 1}, b"\x00\x01")


def test_an_oversized_or_malformed_message_is_refused_unread():
    a, b = socket.socketpair()
    a.sendall(_HEADER.pack(wire.MAX_MESSAGE, 1))
    with pytest.raises(wire.ProtocolError, match="bytes"):
        wire.receive_message(b)
    data = json.dumps([1, 2]).encode()
    a.sendall(_HEADER.pack(len(data), 0) + data)
    with pytest.raises(wire.ProtocolError, match="JSON object"):
        wire.receive_message(b)


def test_a_closed_connection_is_peer_closed():
    a, b = socket.socketpair()
    a.sendall(struct.pack("!Q", 5))  # half a header, then gone
    a.close()
    with pytest.raises(wire.PeerClosed):
        wire.receive_message(b)


# ---------------------------------------------------------------- the codec, value by value

VALUES = [None, True, False, 0, -7, 2**40, 1.5, float("inf"), float("-inf"), "text", "", [1, "a", None], (1, (2, 3)), (),
          {"a": 1, 2: [3]}, OrderedDict(b=1), torch.float16, torch.bfloat16, torch.int64, torch.device("cpu"),
          torch.device("meta"), slice(1, None, 2), Ellipsis, torch.Size([2, 3]),
          Config(d_model=8, n_heads=2, n_layers=1, d_vocab=5, n_ctx=4)]


@pytest.mark.parametrize("value", VALUES, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(VALUES)])
def test_a_plain_value_crosses_and_comes_back_equal_and_of_its_type(peers, value):
    echo = remote(peers, "echo", lambda x: x)
    back = echo(value)
    assert back == value and type(back) is (dict if type(value) is OrderedDict else type(value))


def test_nan_crosses(peers):
    back = remote(peers, "echo", lambda x: x)(float("nan"))
    assert type(back) is float and back != back


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool])
def test_a_tensor_crosses_with_its_dtype_shape_and_bytes(peers, dtype):
    tensor = (torch.arange(6).reshape(2, 3) % 2).to(dtype)
    back = remote(peers, "echo", lambda x: x.clone())(tensor)
    assert back.dtype == dtype and back.shape == (2, 3) and torch.equal(back, tensor)


def test_a_meta_tensor_crosses_without_bytes(peers):
    back = remote(peers, "shape_of", lambda x: (x.device.type, tuple(x.shape)))(torch.empty(4, 5, device="meta"))
    assert back == ("meta", (4, 5))


def test_an_unknown_kind_or_dtype_or_device_is_a_protocol_error(peers):
    checker, worker, _ = peers
    decoder = wire.codec._Decoder(checker, {})
    for bad in ({"$": "pickle", "data": "..."}, {"$": "dtype", "name": "complex_evil"}, {"$": "device", "name": "xla"}):
        with pytest.raises(wire.ProtocolError):
            decoder.decode(bad)


# ---------------------------------------------------------------- shared state

def test_an_in_place_write_on_the_other_side_is_seen_here(peers):
    tensor = torch.zeros(3)
    remote(peers, "add_one", lambda x: x.add_(1).sum().item())(tensor)
    assert tensor.tolist() == [1.0, 1.0, 1.0]


def test_a_write_through_data_is_seen_too(peers):
    """`p.data -= ...` bumps no version counter: change detection must still see it."""
    weight = nn.Parameter(torch.ones(2))

    def step(p):
        p.data -= 0.5

    remote(peers, "step", step)(weight)
    assert weight.tolist() == [0.5, 0.5]


def test_a_write_here_during_a_callback_is_seen_there(peers):
    tensor = torch.zeros(2)

    def call_back(x, callback):
        callback()
        return x.sum().item()

    assert remote(peers, "call_back", call_back)(tensor, lambda: tensor.fill_(3)) == 6.0


def test_a_generator_stays_in_step_across_the_wire(peers):
    generator = torch.Generator().manual_seed(0)
    drawn_there = remote(peers, "draw", lambda g: torch.rand(3, generator=g))(generator)
    expected_generator = torch.Generator().manual_seed(0)
    assert torch.equal(drawn_there, torch.rand(3, generator=expected_generator))
    assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=expected_generator))


def test_a_gradient_crosses_back_through_a_remote_call(peers):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = remote(peers, "square", lambda t: (t * t).sum())(x)
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


# ---------------------------------------------------------------- errors and stand-ins

def test_an_exception_there_is_raised_here_as_its_builtin_type(peers):
    def fail(message):
        raise ValueError(message)

    with pytest.raises(ValueError, match="bad value") as caught:
        remote(peers, "fail", fail)("bad value")
    assert isinstance(caught.value, wire.RemoteError) and caught.value.remote_type == "ValueError"


@pytest.mark.parametrize("error", [KeyError("no 'x' here"), KeyError("plain"), ValueError("it's wrong")], ids=repr)
def test_an_exception_reads_the_same_on_both_sides(peers, error):
    def fail():
        raise error

    with pytest.raises(type(error)) as caught:
        remote(peers, "fail", fail)()
    assert str(caught.value) == str(error)


def test_private_attributes_of_the_checkers_objects_are_out_of_reach(peers):
    class Secret:
        _key = "hidden"

    with pytest.raises(AttributeError, match="out of reach"):
        remote(peers, "peek", lambda obj: obj._key)(Secret())


def test_a_module_crosses_as_a_stand_in_with_its_parameters(peers):
    layer = nn.Linear(3, 2)
    names = remote(peers, "names", lambda module: sorted(name for name, _ in module.named_parameters()))(layer)
    assert names == ["bias", "weight"]
    out = remote(peers, "run", lambda module, x: module(x))(layer, torch.ones(1, 3))
    assert torch.allclose(out, layer(torch.ones(1, 3)))
