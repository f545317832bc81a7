"""Processes we start, and killing them with everything they started, and nothing else.

Every run is started in a session of its own (start_new_session), so what it starts shares that
session unless it detaches. While runs are in progress this process is a child subreaper on Linux:
a process that detaches (setsid, a double fork) is handed to us once its parent is gone, so it can
still be found and killed. kill_tree kills a run's process, its descendants, every process of its
session, and the orphans handed to us that are in another session than ours; never a child of ours
that shares our session (a Jupyter kernel's own subprocesses, DataLoader workers), nor a process
started on purpose. The subreaper flag is restored once the last run ends, so a notebook's kernel
is left as it was found. Elsewhere only the process and its process group are killed (and, on
Windows, only the process).
"""
import contextlib
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


PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
_adopting = 0  # runs in progress that want orphans handed to us
_subreaper_before: "bool | None" = None  # what the flag was before the first of them


def _prctl(option: int, *args) -> int:
    import ctypes

    return ctypes.CDLL(None).prctl(option, *args)


def is_subreaper() -> "bool | None":
    """Whether this process adopts orphans (None where the system cannot say)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        flag = ctypes.c_int(0)
        _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
        return bool(flag.value)
    except (OSError, AttributeError, TypeError):
        return None


@contextlib.contextmanager
def adopting_orphans():
    """While in this block (runs nest and overlap across threads), orphans of the processes we start
    become our children, so that kill_tree can find them; after the last block the flag is as it was."""
    global _adopting, _subreaper_before
    with _lock:
        if _adopting == 0:
            _subreaper_before = is_subreaper()
            _set_subreaper(True)
        _adopting += 1
    try:
        yield
    finally:
        with _lock:
            _adopting -= 1
            if _adopting == 0 and _subreaper_before is False:
                _set_subreaper(False)


def adopt_orphans_for_good() -> None:
    """For a process that exists only to run learner code (the checker): adopt orphans until it ends."""
    _set_subreaper(True)


def _set_subreaper(on: bool) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError, TypeError):
        pass


def _stat(pid: int) -> "list[bytes] | None":
    """The fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _session_of(pid: int) -> "int | None":
    fields = _stat(pid)
    return int(fields[3]) if fields and len(fields) > 3 else None


def _in_session(session: int) -> list[int]:
    """Every process of `session` (Linux: read from /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit() and _session_of(int(name)) == session]


def _foreign_orphans(spare: set) -> list[int]:
    """Our children that we did not start and that are not of our session: orphans a run left to us."""
    try:
        ours = os.getsid(0)
    except (AttributeError, OSError):
        return []
    return [pid for pid in _children(os.getpid()) if pid not in spare and _session_of(pid) not in (ours, None)]


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
            fields = _stat(int(name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(name))
        except (IndexError, ValueError):
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
    """Kill `process`, all it started (its descendants and its session), and the orphans handed to
    us meanwhile that are not of our session; but not the other processes we started on purpose
    (another kata's run going on in another thread), nor our own session's children."""
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    for _ in range(5):
        with _lock:
            spare = {pid for pid in _started if pid != process.pid}
            victims = {process.pid, *_descendants(process.pid), *_in_session(process.pid), *_foreign_orphans(spare)}
            victims |= {each for pid in list(victims) for each in _descendants(pid) if each not in spare}
            victims -= spare | {os.getpid()}
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
        if not _foreign_orphans(spare) and not [pid for pid in _in_session(process.pid) if pid != process.pid]:
            break
        time.sleep(0.05)
    _started.discard(process.pid)
