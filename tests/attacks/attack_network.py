"""Network: connects to a port on this machine (tests/test_attacks.py listens there and writes its
number over __KATA_ATTACK_PORT__) and sends what it knows; the way a solution would be fetched."""
import os
import socket

PORT = int("__KATA_ATTACK_PORT__")
for host in ("127.0.0.1", "localhost", "::1"):
    try:
        with socket.create_connection((host, PORT), timeout=2) as connection:
            connection.sendall(f"kata-attack-marker from pid {os.getpid()}\n".encode())
    except OSError:
        pass


def apply_causal_mask(scores):
    return scores
