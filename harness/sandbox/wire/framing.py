"""Framing: a message is a JSON header and a blob of tensor bytes, each preceded by its length."""
import json
import socket
import struct

_HEADER = struct.Struct("!QQ")  # JSON bytes, tensor bytes
MAX_MESSAGE = 2 * 2**30  # GPT-2 small with its gradients fits (1 GB); anything larger is refused, not read


class PeerClosed(ConnectionError):
    """The other side went away (it crashed, was killed, or closed the connection)."""


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid message."""



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

