"""Isolated runs: the learner's code in a worker process of its own, never in the checker.

With `pytest --isolate` (and always under `kata grade`), `harness.testing.under_test(KATA)` hands
the suites a stand-in for the learner's function or class: calling it sends the arguments to
the kata's worker (harness.sandbox.worker) over a socket pair that only the two processes hold, and
brings back the result (harness.sandbox.wire: JSON and safetensors, nothing that can run code when read).
The suites read the same in both modes: modules built from a Config, their parameters,
load_state_dict, backward(), KV caches with methods, models and callbacks passed as arguments.

One worker per kata, started at the kata's first call and stopped after its last test (or when
it crashes or runs out of time: the next test gets a fresh one). Stopping it kills every process
it started: in the worker's PID namespace when the checker is root; otherwise the checker is a
child subreaper (orphans of the worker become its children) and kills all of them.
"""
import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import loader, manifest
from harness.manifest import Kata
from harness.run import processes
from harness.sandbox.crossing import rebuildable_classes, shareable_classes, staged_katas

PR_SET_DUMPABLE = 4
OUTPUT_TAIL = 4000  # characters of the worker's output kept for a failure message


class WorkerCrashed(RuntimeError):
    """The worker ended while running the learner's code (os._exit, a crash, a limit)."""


class Settings:
    """What every worker of this checker gets."""

    def __init__(self, hide: "list[str] | None" = None, memory_gib: "float | None" = 12.0, cpu_seconds: "int | None" = 600,
                 contain: bool = True, threads: int = 1):
        self.hide = hide or []
        self.memory_gib, self.cpu_seconds, self.contain, self.threads = memory_gib, cpu_seconds, contain, threads


_settings: "Settings | None" = None
_workers: dict[str, "Worker"] = {}
protections_seen: dict[str, list[str]] = {}  # kata id -> the protections its (last) worker reported
_on_protections = []


def enable(settings: "Settings | None" = None) -> None:
    """From now on, under_test runs the learner's code in workers."""
    global _settings
    _settings = settings or Settings()
    _harden_checker()
    atexit.register(stop_all)


def disable() -> None:
    """Back to running the code under test in this process (stops every worker)."""
    global _settings
    stop_all()
    _settings = None


def active() -> bool:
    return _settings is not None


def call_under_test(kata: Kata, args: tuple, kwargs: dict):
    return worker_for(kata).symbol(*args, **kwargs)


def worker_for(kata: Kata) -> "Worker":
    worker = _workers.get(kata.id)
    if worker is None or not worker.alive:
        if worker is not None:
            worker.stop()
        worker = _workers[kata.id] = Worker(kata, _settings)
        worker.start()
    return worker


def stop(kata_id: str) -> None:
    worker = _workers.pop(kata_id, None)
    if worker is not None:
        worker.stop()


def stop_all() -> None:
    for kata_id in list(_workers):
        stop(kata_id)


def on_protections(listener) -> None:
    """`listener(kata_id, protections)` is called when a worker says which protections are in force."""
    _on_protections.append(listener)


def _checker_protections() -> list:
    if sys.platform.startswith("linux"):
        return ["the checker: not dumpable (its /proc entries are closed to the worker), adopts and kills every orphan"]
    return []


def _harden_checker() -> None:
    """Linux: the worker may not read this process's memory, environment or open files through /proc
    (it is not dumpable), and every orphan the worker leaves becomes our child, to be killed."""
    processes.adopt_orphans_for_good()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError, TypeError):
        pass


class Worker:
    def __init__(self, kata: Kata, settings: Settings):
        self.kata, self.settings = kata, settings
        self.process: "subprocess.Popen | None" = None
        self.peer = None
        self._symbol = None
        self._load_error: "BaseException | None" = None
        self._dirs: list[str] = []

    @property
    def alive(self) -> bool:
        return self.peer is not None and self.peer.alive and self.process.poll() is None

    def start(self) -> None:
        from harness.sandbox import wire

        code = self._stage_code()
        scratch = tempfile.mkdtemp(prefix="kata-scratch-")
        os.chmod(scratch, 0o777)
        self._dirs.append(scratch)
        output = tempfile.TemporaryFile()
        self._output = output
        ours, theirs = socket.socketpair()
        settings = {"kata": self.kata.id, "scratch": scratch, "contain": self.settings.contain, "threads": self.settings.threads,
                    "memory_bytes": int(self.settings.memory_gib * 2**30) if self.settings.memory_gib else None,
                    "cpu_seconds": self.settings.cpu_seconds,
                    "hide": [str(manifest.ROOT / name) for name in ("reference", "katas", "tests")] + self.settings.hide}
        from harness.sandbox.worker import BOOT

        self.process = processes.start(
            [sys.executable, "-I", "-c", BOOT, code, str(theirs.fileno()), json.dumps(settings)],
            pass_fds=[theirs.fileno()], cwd=scratch, env=_worker_environment(), stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        theirs.close()
        self.peer = wire.Peer(ours, 0)
        self.peer.shareable = shareable_classes(self.kata, loader.load_reference)
        self.peer.rebuildable = rebuildable_classes(self.kata, loader.load_reference)
        try:
            protections = self.peer.request("load", name="protections")
            try:
                self._symbol = self.peer.request("load", name="symbol")
            except wire.RemoteError as error:  # the kata file does not import: that is every test's verdict
                self._load_error = error
        except wire.PeerClosed as error:
            raise self.crashed("while starting") from error
        protections = list(protections) + _checker_protections()
        protections_seen[self.kata.id] = protections
        for listener in _on_protections:
            listener(self.kata.id, list(protections))

    def symbol(self, *args, **kwargs):
        from harness.sandbox import wire

        if self._load_error is not None:
            raise self._load_error.with_traceback(None)
        try:
            return self._symbol(*args, **kwargs)
        except wire.PeerClosed as error:
            raise self.crashed("while running this test") from error

    def module(self, name: str):
        """The worker's own copy of module `name` (one of worker.MODULES_A_TEST_MAY_PATCH), as a stand-in
        whose attributes a test can read and replace: a function set on it is called back here."""
        from harness.sandbox import wire

        try:
            return self.peer.request("load", name=f"module:{name}")
        except wire.PeerClosed as error:
            raise self.crashed("while a test set it up") from error

    def crashed(self, when: str) -> WorkerCrashed:
        code = self.process.wait(timeout=5) if self.process else None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = {"SIGKILL": " (out of memory, or killed at a time limit?)", "SIGXCPU": " (its CPU time ran out)",
                   "SIGXFSZ": " (it wrote too large a file)"}.get(name, "")
            how = f"was killed by {name}{why}"
        else:
            how = f"ended (exit code {code}: os._exit or sys.exit in the kata?)"
        tail = self.output_tail()
        self.stop()
        return WorkerCrashed(f"the process running your code {how} {when}." + (f"\nIts last output:\n{tail}" if tail else ""))

    def output_tail(self) -> str:
        try:
            self._output.seek(0, os.SEEK_END)
            size = self._output.tell()
            self._output.seek(max(0, size - OUTPUT_TAIL))
            return self._output.read().decode(errors="replace").strip()
        except (OSError, ValueError, AttributeError):
            return ""

    def stop(self) -> None:
        """Say goodbye; then kill the worker and everything it started, whatever it did."""
        if self.peer is not None and self.peer.alive and self.process.poll() is None:
            try:
                self.peer.sock.settimeout(2)
                from harness.sandbox import wire

                wire.send_message(self.peer.sock, {"kind": "request", "op": "goodbye", "body": {}, "sync": [], "release": []})
            except OSError:
                pass
        if self.process is not None:
            processes.kill_tree(self.process)
        if self.peer is not None:
            self.peer.alive = False
            self.peer.sock.close()
        for folder in self._dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._dirs = []

    def _stage_code(self) -> str:
        """A folder holding the harness, the manifest, the file under test and the reference
        solutions of the katas it builds on: all the worker can see of the project."""
        code = Path(tempfile.mkdtemp(prefix="kata-code-"))
        self._dirs.append(str(code))
        os.chmod(code, 0o755)
        shutil.copytree(manifest.ROOT / "harness", code / "harness", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(manifest.MANIFEST, code / "manifest.toml")
        target = code / "katas" / self.kata.folder / f"{self.kata.name}.py"
        target.parent.mkdir(parents=True)
        shutil.copyfile(loader.source_under_test(self.kata), target)
        for kata_id in staged_katas(self.kata):
            dependency = manifest.get(kata_id)
            target = code / "reference" / dependency.folder / f"{dependency.name}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dependency.reference_file, target)
        for path in code.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        return str(code)


def _worker_environment() -> dict:
    """An allowlist: nothing of the checker's (no tokens, no GITHUB_*, no paths of the grader)."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    return {key: os.environ[key] for key in keep if key in os.environ}
