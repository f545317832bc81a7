"""The fork server behind warm runs (`kata`, `kata watch`, check-mutants, the mutation tool).

Started once, it imports torch, Hypothesis, pytest, transformers and the harness; for each run it
forks a process that sets itself up as a cold `python -m pytest` would (environment, working
folder, memory cap, a session of its own, fresh random seeds) and runs pytest there; the kata and
its suite are imported fresh in that process. harness.run.runner reads, limits and kills a forked
run exactly as a cold one. Runs at once are forked side by side. The server is restarted when a
harness file, the environment or the interpreter changed since it started. What it needs of
pytest's internals (assertion rewriting of what it pre-imports) is in harness.run.pytest_shim.
"""
import atexit
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import manifest
from harness.checker import settings
from harness.run import processes, pytest_shim

# The modules a cold run's pytest rewrites besides those of its plugins' distributions.
REWRITTEN_HERE = ("conftest", "harness.checker.events", "harness.checker.pytest_plugin", "harness.checker.time_limits")

# What a kata run imports before it reaches the kata: imported once by the fork server. Never the
# katas (jaxtyping's import hook must see them imported fresh), never a suite.
PRELOAD = ("torch", "numpy", "hypothesis", "hypothesis.strategies", "hypothesis.extra.numpy", "pytest", "jaxtyping",
           "beartype", "harness.checker.events", "harness.checker.pytest_plugin", "harness.loader", "harness.checker.isolation",
           *(f"harness.testing.{path.stem}" for path in sorted((Path(__file__).parent.parent / "testing").glob("[!_]*.py"))),
           "transformers", "transformers.models.gpt2.modeling_gpt2", "transformers.generation",
           "torch._dynamo")  # torch._refs imports it lazily
PER_RUN_ENVIRONMENT = (settings.ENV,)
SERVER_START_TIMEOUT = 300.0  # seconds for the server to import all that on a busy machine
_server: "_ForkServer | None" = None
_server_lock = threading.Lock()


def warm_available() -> bool:
    """Fork is safe and offered: Linux (macOS's frameworks are not fork-safe; Windows has no fork)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and not os.environ.get("KATA_COLD")


def harness_files(root: Path) -> tuple:
    """What the server imported or read from the checkout: when one of these changes, a new server."""
    files = [path for path in (root / "harness").rglob("*.py") if "__pycache__" not in path.parts]
    files += [path for path in (root / "conftest.py", root / "pyproject.toml") if path.is_file()]
    return tuple(sorted((str(path), path.stat().st_mtime_ns) for path in files))


def server_for(root: Path, env: dict) -> "_ForkServer | None":
    global _server
    # What a run reads once pytest starts (its events file, what to hide, the worker's limits) is not the server's.
    server_env = {key: value for key, value in env.items() if key not in PER_RUN_ENVIRONMENT}
    key = (str(root), sys.executable, tuple(sorted(server_env.items())), harness_files(root))
    with _server_lock:
        if _server is not None and (_server.key != key or not _server.alive):
            _server.close()
            _server = None
        if _server is None:
            _server = _ForkServer(root, server_env, key)
        return _server


def stop_fork_server() -> None:
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


atexit.register(stop_fork_server)


class _ForkServer:
    """The runner's side of `serve()`: one request at a time, on its stdin; pids and exit codes on its stdout."""

    def __init__(self, root: Path, env: dict, key: tuple):
        self.key = key
        self.codes: dict[int, int] = {}
        self.pids: "queue.Queue[int | None]" = queue.Queue()
        self.requesting = threading.Lock()
        self.alive = True
        self._log = tempfile.TemporaryFile()
        self.process = processes.start([sys.executable, "-c", "from harness.run.forkserver import serve; serve()"], cwd=root, env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            if "code" in message:
                self.codes[message["pid"]] = message["code"]
            elif "pid" in message:
                self.pids.put(message["pid"])
        self.alive = False
        self.pids.put(None)

    def fork(self, args: list, cwd: Path, env: dict, output: Path, memory_gib: "float | None") -> "_Forked | None":
        """Start pytest with `args` in a forked process; None when the server cannot (the caller runs cold)."""
        if not self.alive:
            return None
        request = {"args": list(args), "cwd": str(cwd), "env": env, "output": str(output), "memory_gib": memory_gib}
        with self.requesting:  # one request at a time, so that each caller gets its own pid back
            try:
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
                pid = self.pids.get(timeout=SERVER_START_TIMEOUT)
            except (OSError, queue.Empty):
                pid = None
        if pid is None:
            self.close()
            return None
        return _Forked(self, pid, memory_capped=bool(memory_gib))

    def close(self) -> None:
        self.alive = False
        try:
            os.killpg(self.process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        processes.forget(self.process.pid)


class _Forked:
    """A pytest process forked by the fork server, seen as a subprocess.Popen (pid, poll, wait, returncode)."""

    def __init__(self, server: _ForkServer, pid: int, memory_capped: bool):
        self.server, self.pid, self.memory_capped = server, pid, memory_capped

    @property
    def returncode(self) -> "int | None":
        if self.pid in self.server.codes:
            return self.server.codes[self.pid]
        if not self.server.alive:  # the server went with it: its exit code is lost
            return -getattr(signal, "SIGKILL", signal.SIGTERM)
        return None

    def poll(self) -> "int | None":
        return self.returncode

    def wait(self, timeout: "float | None" = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while (code := self.returncode) is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("pytest (forked)", timeout)
            time.sleep(0.005)
        return code


def _blocked_plugins(root: Path) -> set:
    """The plugins pyproject.toml's addopts turn off (-p no:NAME)."""
    try:
        options = manifest.read_toml(root / "pyproject.toml")["tool"]["pytest"]["ini_options"].get("addopts", [])
    except (OSError, KeyError, ValueError):
        return set()
    options = options.split() if isinstance(options, str) else list(options)
    return {option.removeprefix("no:") for option in options if option.startswith("no:")}


def _preload() -> None:
    """Import what every kata run imports, as a cold run's pytest would (see serve)."""
    import importlib
    import importlib.metadata

    hook = pytest_shim.rewriting_hook(REWRITTEN_HERE)
    if hook is not None:
        sys.meta_path.insert(0, hook)
    rewritten = set() if hook is not None else pytest_shim.rewritten_names(REWRITTEN_HERE)
    # In a cold run's order: pytest's plugins (not those the configuration turns off), the harness's, the rest.
    blocked = _blocked_plugins(Path.cwd())
    entry_modules = [entry.module for entry in importlib.metadata.entry_points(group="pytest11") if entry.name not in blocked]
    for name in [*entry_modules, *REWRITTEN_HERE[1:], *PRELOAD]:
        if name.split(".")[0] in rewritten or name in rewritten:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a run that needs it will import it, and fail as a cold run would
            pass
    if hook is not None:
        sys.meta_path.remove(hook)


def serve() -> None:
    """The fork server: import what every kata run imports, then for each request fork a process
    that becomes what `python -m pytest ARGS` started cold would be, and report its exit code.

    The modules a cold run's pytest rewrites (its plugins, Hypothesis, jaxtyping, the harness's
    plugins) are imported through pytest's assertion rewriter, marked as pytest marks them, so
    that the forked run has them exactly as a cold one would."""
    environment = dict(os.environ)
    _preload()
    # What the imports set in the environment (HF_HUB_OFFLINE...): a cold run has it set by then too.
    changed = {key: value for key, value in os.environ.items() if environment.get(key) != value}
    torch = sys.modules.get("torch")
    torch_rng = torch.random.get_rng_state() if torch is not None else None  # as a fresh process has it: never used here
    import gc

    gc.collect()
    gc.freeze()  # what the server imported is never collected: the forks' collections skip it (and leave its pages shared)
    replies = os.fdopen(os.dup(1), "w")
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    running: set[int] = set()
    buffer = b""
    while True:  # forks run side by side: requests are read while earlier forks still run
        readable, _, _ = select.select([requests], [], [], 0.02)
        if readable:
            chunk = requests.read(65536)
            if not chunk:
                break
            buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            request["env"].update(changed)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                replies.close()
                requests.close()
                _forked_child(request, torch_rng)
            running.add(pid)
            replies.write(json.dumps({"pid": pid}) + "\n")
            replies.flush()
        for pid in list(running):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                running.discard(pid)
                replies.write(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n")
                replies.flush()


def _forked_child(request: dict, torch_rng) -> None:
    """In the forked process: set up as a cold `python -m pytest` would be, run pytest, and exit."""
    code = 1
    try:
        os.setsid()  # a session of its own, as a cold run's start_new_session: killpg reaches what it starts
        output = os.open(request["output"], os.O_WRONLY | os.O_APPEND)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and sys.path[0] in ("", "."):
            sys.path[0] = os.getcwd()  # as `python -m pytest` has it
        if request.get("memory_gib"):
            import resource

            limit = int(float(request["memory_gib"]) * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import random

        random.seed()  # every fork would otherwise share the server's random state
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if torch_rng is not None:
            sys.modules["torch"].random.set_rng_state(torch_rng)
        sys.argv = ["pytest", *request["args"]]
        import pytest

        code = pytest.main(request["args"])
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the run's output, as a cold run's traceback would be
        import traceback

        traceback.print_exc()
        code = 1
    try:
        pytest_shim.run_exit_functions()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(int(code))


if __name__ == "__main__":
    serve()
