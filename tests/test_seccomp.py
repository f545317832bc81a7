"""The worker's seccomp filter (harness.sandbox.seccomp): the kernel refuses new processes, ptrace,
pidfd calls and signals to other processes, on every thread, and threads (torch's too) still start.

Each test installs the filter in a fresh Python of its own: a filter cannot be lifted."""
import subprocess
import sys
import textwrap

import pytest

from harness.manifest import ROOT

pytestmark = [pytest.mark.subprocess,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")]

ATTEMPTS = """
import os, signal, sys, threading, time
sys.path.insert(0, ROOT)
import torch
from harness.sandbox import seccomp

def attempt(name, call):
    try:
        call()
        print(f"{name}: allowed")
    except OSError as error:
        print(f"{name}: refused {error.errno}")

# A thread started before the filter: it must be filtered too (TSYNC).
early = []
def later():
    time.sleep(0.3)
    try:
        os.kill(os.getppid(), 0)
        early.append("allowed")
    except OSError:
        early.append("refused")
thread = threading.Thread(target=later)
thread.start()
seccomp.install()
thread.join()
print(f"early thread kill: {early[0]}")
import _posixsubprocess
attempt("fork", os.fork)
attempt("fork_exec", lambda: __import__("subprocess").run(["true"]))
attempt("execv", lambda: os.execv("/bin/true", ["true"]))
attempt("kill parent", lambda: os.kill(os.getppid(), 0))
attempt("kill group", lambda: os.kill(0, 0))
attempt("pidfd_open", lambda: os.pidfd_open(os.getppid()))
attempt("pidfd_send_signal", lambda: signal.pidfd_send_signal(3, 0))
attempt("kill self", lambda: os.kill(os.getpid(), 0))
signal.signal(signal.SIGUSR1, lambda *args: None)
attempt("raise", lambda: signal.raise_signal(signal.SIGUSR1))
attempt("thread", lambda: (lambda t: (t.start(), t.join()))(threading.Thread(target=len, args=("",))))
torch.set_num_threads(2)
attempt("torch threads", lambda: torch.randn(400, 400) @ torch.randn(400, 400))
"""


def run_attempts() -> dict:
    script = f"ROOT = {str(ROOT)!r}\n" + textwrap.dedent(ATTEMPTS)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


def test_the_kernel_refuses_processes_and_other_processes_but_not_threads_or_own_signals():
    seen = run_attempts()
    for refused in ("fork", "fork_exec", "execv", "kill parent", "kill group", "pidfd_open", "pidfd_send_signal"):
        assert seen[refused] == "refused 1", (refused, seen)  # EPERM
    for allowed in ("kill self", "raise", "thread", "torch threads"):
        assert seen[allowed] == "allowed", (allowed, seen)
    assert seen["early thread kill"] == "refused", "a thread started before the filter is filtered too"


def test_the_program_jumps_land_inside_it():
    from harness.sandbox import seccomp

    for arch in seccomp.ARCHITECTURES.values():
        steps = seccomp.program(arch, own_pid=1234)
        assert steps[-1] == (seccomp.RETURN, 0, 0, seccomp.ALLOW)
        for index, (code, if_true, if_false, _) in enumerate(steps):
            if code != seccomp.RETURN:
                assert index + 1 + max(if_true, if_false) < len(steps)
            else:
                assert if_true == if_false == 0
