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

from harness.sandbox.wire.errors import RemoteError, remote_error_class
from harness.sandbox.wire.framing import MAX_MESSAGE, PeerClosed, ProtocolError, receive_message, send_message
from harness.sandbox.wire.peer import Peer
from harness.sandbox.wire.standins import RemoteModule, RemoteObject

__all__ = ["MAX_MESSAGE", "Peer", "PeerClosed", "ProtocolError", "RemoteError", "RemoteModule", "RemoteObject",
           "receive_message", "remote_error_class", "send_message"]
