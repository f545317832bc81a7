"""Processes we start, and killing them with everything they started.

On Linux the process that starts learner code is a child subreaper: a process that detaches
(setsid, a double fork) is handed to it once its parent is gone, so it can still be found and
killed. Elsewhere only the process and its process group are killed (and, on Windows, only the
process).
"""
import os
import signal
import subprocess
import sys
import threading
import time

_started: set[int] = set()  # pids of the processes started on purpose that are still ours
_lock = threading.Lock()  # a process being started is not taken for an orphan by another thread's kill_tree


def start(*args, **kwargs) -> subprocess.Popen:
    """subprocess.Popen, for a process started on purpose: another kill_tree leaves it alone."""
    with _lock:
        process = subprocess.Popen(*args, **kwargs)
        _started.add(process.pid)
    return process


def started(process: subprocess.Popen) -> None:
    """`process` was started on purpose: another kill_tree leaves it alone."""
    with _lock:
        _started.add(process.pid)


def forget(pid: int) -> None:
    """A process started on purpose is gone."""
    with _lock:
        _started.discard(pid)


def become_subreaper() -> None:
    """Linux: every orphan of the processes we start becomes our child, so that we can stop it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError, TypeError):
        pass


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux: read from /proc)."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _descendants(pid: int) -> list[int]:
    found, waiting = [], [pid]
    while waiting:
        for child in _children(waiting.pop()):
            found.append(child)
            waiting.append(child)
    return found


def kill_tree(process: subprocess.Popen) -> None:
    """Kill `process`, all it started, and every orphan handed to us meanwhile (we are a child
    subreaper: a detached process, once its parent is gone, becomes ours); but not the other
    processes we started on purpose (another kata's run going on in another thread)."""
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    for _ in range(5):
        with _lock:
            spare = {pid for pid in _started if pid != process.pid}
            victims = {process.pid, *_descendants(process.pid)}
            victims |= {pid for pid in _children(os.getpid()) if pid not in spare}
            victims |= {each for pid in list(victims) for each in _descendants(pid) if each not in spare}
            for pid in victims:
                try:
                    os.kill(pid, kill)
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        try:
            os.killpg(process.pid, kill)
        except (ProcessLookupError, PermissionError, AttributeError, OSError):
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for pid in victims - {process.pid}:  # orphans handed to us: reap them
            try:
                os.waitpid(pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                pass
        if not [pid for pid in _children(os.getpid()) if pid not in spare]:
            break
        time.sleep(0.05)
    _started.discard(process.pid)
