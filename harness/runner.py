"""The one way to run kata suites: `kata`, `kata watch`, `kata grade`, check-stubs and check-mutants
all call run_katas, which runs pytest in a subprocess and reads its outcomes as they stream.

Bad learner code cannot take the verdicts down with it:
- an infinite loop: pytest-timeout fails the test after `test_timeout` seconds, and
  harness.stream fails the rest of that kata's tests at once;
- unbounded allocation: the address space of the process running the learner's code is capped,
  so a huge allocation fails that test instead of exhausting the machine;
- anything that still kills or freezes the test process (os._exit, a segfault, a loop in C that no
  signal interrupts): the outcomes streamed so far are kept, the test that was running fails its
  kata, and pytest is started again on the katas not yet run;
- budgets: a kata that runs longer than `kata_budget` seconds in all, or a run longer than
  `budget`, is stopped with SIGKILL, and everything it started with it.

With `isolate` (always for `kata grade`) the learner's code runs in a worker process per kata,
apart from the checker that runs the suites (harness.isolation); the outcomes say which
protections were in force. Every limit is applied where the system offers it, and the results
say which ones were.

With `warm` (`kata`, `kata watch`, check-mutants, the mutation tool), pytest is not started cold
each time: a fork server, started once with torch, Hypothesis, pytest, the harness and transformers
imported, forks a process per run that sets itself up as a cold `python -m pytest` would
(environment, working folder, memory cap, a session of its own, fresh random seeds) and runs pytest
there; the kata and its suite are imported fresh in that process. It is read, limited and killed
exactly as a cold one. Runs at once are forked side by side, isolated or not (isolated, the
learner's code still runs in a worker started cold). The server is restarted when a harness file,
the environment or the interpreter changed since it started; where fork is not safe (not Linux) or
KATA_COLD is set, runs are cold. Grading is always cold.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import manifest, processes
from harness.manifest import Kata
from harness.results import KataResult, TestOutcome

DEFAULT_TEST_TIMEOUT = 90.0  # seconds per test; the slowest reference test takes 10-25 s on 2 busy cores
DEFAULT_MEMORY_GIB = 12.0  # address space of the process running learner code; the reference run peaks near 3 GiB
DEFAULT_KATA_BUDGET = 600.0  # seconds for all of one kata's tests; the slowest suite takes about 60 s
OUTPUT_TAIL = 2000  # characters of a dead test process's output kept for its failure


@dataclass
class Limits:
    test_timeout: float = DEFAULT_TEST_TIMEOUT
    memory_gib: "float | None" = DEFAULT_MEMORY_GIB
    kata_budget: "float | None" = DEFAULT_KATA_BUDGET
    budget: "float | None" = None  # seconds for the whole run

    @property
    def stall(self) -> float:
        """Seconds without any news from pytest after which it is killed (covers collection too)."""
        return self.test_timeout + 60


Progress = Callable[[int, int, "Kata | None"], None]  # (tests finished, tests in all, kata now running)


def run_katas(
    katas: Sequence[Kata],
    *pytest_args: str,
    root: Path = manifest.ROOT,
    limits: "Limits | None" = None,
    progress: "Progress | None" = None,
    isolate: bool = False,
    hide: Sequence[Path] = (),
    warm: bool = False,
) -> dict[str, KataResult]:
    """Run the suites of `katas` under `root` and return one KataResult per kata id. With
    `isolate`, the learner's code runs apart from the checker, which hides `hide` from it. With
    `warm`, pytest runs in a process forked from a fork server (where the system allows it)."""
    limits = limits or Limits()
    warm = warm and warm_available()
    results = {kata.id: KataResult(kata) for kata in katas}
    by_file = {manifest.shown(kata.test_file): kata for kata in katas}
    pending = [path for path in by_file if (root / path).is_file()]
    deadline = time.monotonic() + limits.budget if limits.budget else None
    finished_before = total = 0
    processes.become_subreaper()
    while pending:
        run = _Run(pending, pytest_args, root, limits, isolate, hide, deadline, warm)
        for event in run.events():
            kata = by_file.get(_file_of(event.get("nodeid", "")))
            if event["event"] == "collected":
                total = finished_before + len(event["tests"])
            elif event["event"] == "start" and progress:
                progress(finished_before + run.finished, total, kata)
            elif event["event"] == "protections" and event.get("kata") in results:
                results[event["kata"]].protections = list(event["protections"])
            elif event["event"] == "test":
                if kata is not None:
                    results[kata.id].add(TestOutcome(event["nodeid"], _name_of(event["nodeid"]), event["outcome"],
                                                     event.get("message", ""), event.get("output", ""), event.get("duration", 0.0),
                                                     event.get("kind", "")))
                if progress:
                    progress(finished_before + run.finished, total, kata)
        if run.completed:
            break
        # The process died, froze or ran out of time: the test it was running fails its kata,
        # and the katas it had not reached get a fresh process (unless the whole run is out of time).
        crashed = _file_of(run.current) if run.current else None
        if crashed is None or crashed not in by_file or run.out_of_budget:
            for path in pending:
                if not results[by_file[path].id].tests:
                    results[by_file[path].id].add(TestOutcome(path, "(suite)", "failed", run.why(), run.output_tail(), kind=run.kind))
            if crashed in by_file and run.current:
                results[by_file[crashed].id].add(TestOutcome(run.current, _name_of(run.current), "failed", run.why(),
                                                             run.output_tail(), kind=run.kind))
            break
        results[by_file[crashed].id].add(TestOutcome(run.current, _name_of(run.current), "failed", run.why(), run.output_tail(),
                                                     kind=run.kind))
        reached = {_file_of(nodeid) for nodeid in run.reported} | {crashed}
        finished_before += run.finished
        pending = [path for path in pending if path not in reached]
    for kata in katas:
        if isolate and not results[kata.id].protections:
            results[kata.id].protections = ["a worker process of its own (it did not report its protections)"]
        elif not isolate:
            results[kata.id].protections = run.limits_in_force()
    return results


class _Run:
    """One pytest subprocess, read as it goes."""

    def __init__(self, paths: list[str], pytest_args: Sequence[str], root: Path, limits: Limits, isolate: bool,
                 hide: Sequence[Path], deadline: "float | None", warm: bool = False):
        self.limits, self.deadline, self.isolate = limits, deadline, isolate
        self.current: "str | None" = None
        self.current_file: "str | None" = None
        self.kata_started = time.monotonic()
        self.reported: list[str] = []
        self.completed = False
        self.stalled = self.out_of_kata_budget = self.out_of_budget = False
        self._tmp = tempfile.TemporaryDirectory(prefix="kata-run-")
        self.events_file = Path(self._tmp.name) / "events.jsonl"
        self.events_file.touch()
        self.output_file = Path(self._tmp.name) / "output.txt"
        command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-p", "harness.stream",
                   f"--timeout={limits.test_timeout:g}", *pytest_args]
        if hasattr(signal, "SIGALRM"):
            command.append("--timeout-method=signal")  # fails the test and goes on; "thread" would end the process
        if isolate:
            command.append("--isolate")
        env = _environment(root)
        env["KATA_EVENTS"] = str(self.events_file)
        if isolate:
            env["KATA_HIDE"] = os.pathsep.join(str(path) for path in [*hide, self._tmp.name])
            env["KATA_WORKER_MEMORY_GIB"] = str(limits.memory_gib or "")
            env["KATA_WORKER_CPU_SECONDS"] = str(limits.kata_budget or "")
        self.output_file.touch()
        server = _fork_server(root, env) if warm else None
        # Learner code runs in the pytest process unless isolated: cap it (where the system can).
        memory_gib = None if isolate else limits.memory_gib
        self.process = server.fork(command[3:], root, env, self.output_file, memory_gib) if server else None
        if self.process is not None:
            self.memory_capped = bool(memory_gib) and self.process.memory_capped
            return
        with open(self.output_file, "w") as output:
            self.process = processes.start(command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        self.memory_capped = not isolate and _cap_memory(self.process.pid, limits.memory_gib)

    @property
    def finished(self) -> int:
        return len(self.reported)

    @property
    def kind(self) -> str:
        if self.out_of_budget or self.out_of_kata_budget:
            return "budget"
        return "timeout" if self.stalled else "crash"

    def events(self):
        last_news = time.monotonic()
        ended = False
        with open(self.events_file, encoding="utf-8") as stream:
            buffer = ""
            while True:
                chunk = stream.read()
                if chunk:
                    last_news = time.monotonic()
                    buffer += chunk
                    *lines, buffer = buffer.split("\n")
                    for line in lines:
                        event = json.loads(line)
                        self._note(event)
                        yield event
                    continue
                if ended:
                    break
                if self.completed and not self.isolate:
                    break  # every verdict is in: what pytest does at exit (gc passes, ~0.5 s) is not waited for
                if self.process.poll() is not None:
                    ended = True  # one more read: what it wrote just before it ended
                    continue
                now = time.monotonic()
                if now - last_news > self.limits.stall:
                    self.stalled = True
                elif self.limits.kata_budget and self.current_file and now - self.kata_started > self.limits.kata_budget:
                    self.out_of_kata_budget = True
                elif self.deadline is not None and now > self.deadline:
                    self.out_of_budget = True
                if self.stalled or self.out_of_kata_budget or self.out_of_budget:
                    processes.kill_tree(self.process)
                    ended = True
                    continue
                time.sleep(0.05)
        processes.kill_tree(self.process)  # whatever the tests left behind goes too

    def _note(self, event: dict) -> None:
        if event["event"] == "start":
            self.current = event["nodeid"]
            if _file_of(self.current) != self.current_file:
                self.current_file, self.kata_started = _file_of(self.current), time.monotonic()
        elif event["event"] == "test":
            self.reported.append(event["nodeid"])
            self.current = None
        elif event["event"] == "finished":
            self.completed = True

    def limits_in_force(self) -> list:
        """What held the learner's code in, when it ran in the test process itself (not isolated)."""
        memory = (f"address space capped at {self.limits.memory_gib:g} GiB" if self.memory_capped
                  else "no cap on memory (this system cannot set one on a running process)")
        budget = f"; {self.limits.kata_budget:g} s per kata" if self.limits.kata_budget else ""
        return [f"the test process itself: {self.limits.test_timeout:g} s per test{budget}; {memory}"]

    def why(self) -> str:
        if self.out_of_budget:
            return "not run: the time budget of the whole run was spent (every process of it was stopped)"
        if self.out_of_kata_budget:
            return (f"this kata's tests took more than its time budget of {self.limits.kata_budget:g} s in all "
                    "(an infinite loop that ignores time limits?), and were stopped")
        if self.stalled:
            return (f"the test process stopped responding (no test finished within {self.limits.stall:g} s; "
                    "an infinite loop that no time limit could interrupt?) and was stopped")
        code = self.process.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            extra = " (out of memory?)" if name == "SIGKILL" else ""
            return f"the test process was killed by {name}{extra} while running this test"
        return f"the test process ended (exit code {code}) while running this test: os._exit or sys.exit in the kata?"

    def output_tail(self) -> str:
        return self.output_file.read_text(errors="replace")[-OUTPUT_TAIL:]


def _environment(root: Path) -> dict:
    """The environment of the process that runs pytest."""
    # No CI credentials or workflow command files (a forged score written to $GITHUB_OUTPUT),
    # and never KATA_IMPL (only --reference asks for the reference).
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITHUB_", "ACTIONS_", "RUNNER_")) and key != "KATA_IMPL"}
    env.update(CI=os.environ.get("CI", "1"), PYTHONDONTWRITEBYTECODE="1")
    if root != manifest.ROOT:  # a staged copy: its own harness, not the installed one
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _cap_memory(pid: int, gib: "float | None") -> bool:
    """Cap a process's address space after it started (no preexec_fn); False where the system cannot."""
    if not gib:
        return False
    try:
        import resource

        limit = int(gib * 2**30)
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        return True
    except (ImportError, AttributeError, ValueError, OSError):  # not Linux (macOS has no prlimit), or the process is gone
        return False


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _name_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


# ---------------------------------------------------------------- the fork server (warm runs)

# What a kata run imports before it reaches the kata: imported once by the fork server. Never the
# katas (jaxtyping's import hook must see them imported fresh), never a suite.
PRELOAD = ("torch", "numpy", "hypothesis", "hypothesis.strategies", "hypothesis.extra.numpy", "pytest", "jaxtyping",
           "beartype", "harness.stream", "harness.pytest_plugin", "harness.loader", "harness.isolation",
           *(f"harness.testing.{path.stem}" for path in sorted((Path(__file__).parent / "testing").glob("[!_]*.py"))),
           "transformers", "transformers.models.gpt2.modeling_gpt2", "transformers.generation",
           "torch._dynamo")  # torch._refs imports it lazily
PER_RUN_ENVIRONMENT = ("KATA_EVENTS", "KATA_HIDE", "KATA_WORKER_MEMORY_GIB", "KATA_WORKER_CPU_SECONDS")
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


def _fork_server(root: Path, env: dict) -> "_ForkServer | None":
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


def start_fork_server(root: Path = manifest.ROOT) -> None:
    """Start the fork server now (it imports in the background) so that the first warm run finds it ready."""
    if warm_available():
        _fork_server(root, _environment(root))


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
        self.process = processes.start([sys.executable, "-c", "from harness.runner import serve; serve()"], cwd=root, env=env,
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


def _rewritten_names(root: Path) -> set:
    """What a cold pytest run marks for assertion rewriting before it imports it: the modules of
    every distribution with a pytest plugin, and the harness's own plugins (-p, the conftest's)."""
    import importlib.metadata

    from _pytest.config import _iter_rewritable_modules, _plugin_rewrite_name

    names = {"conftest", "harness.stream", "harness.pytest_plugin"}
    for dist in importlib.metadata.distributions():
        entry_points = [entry for entry in dist.entry_points if entry.group == "pytest11"]
        if entry_points:
            found = set(_iter_rewritable_modules(str(file) for file in dist.files or []))
            names |= found or {name for entry in entry_points if (name := _plugin_rewrite_name(entry.value.partition(":")[0].strip()))}
    return names


def _blocked_plugins(root: Path) -> set:
    """The plugins pyproject.toml's addopts turn off (-p no:NAME)."""
    try:
        options = manifest.read_toml(root / "pyproject.toml")["tool"]["pytest"]["ini_options"].get("addopts", [])
    except (OSError, KeyError, ValueError):
        return set()
    options = options.split() if isinstance(options, str) else list(options)
    return {option.removeprefix("no:") for option in options if option.startswith("no:")}


class _NoTrace:
    def __call__(self, *args) -> None:
        pass

    def get(self, name: str) -> "_NoTrace":
        return self


class _RewriteConfig:
    """The little of a pytest Config that its assertion rewriter reads while importing modules."""

    def __init__(self):
        import pytest
        from _pytest.assertion import AssertionState, assertstate_key

        self.trace = type("Trace", (), {"root": _NoTrace()})()
        self.stash = pytest.Stash()
        self.stash[assertstate_key] = AssertionState(self, "rewrite")

    def getini(self, name: str):
        return {"python_files": ["test_*.py"], "enable_assertion_pass_hook": False}[name]

    def issue_config_time_warning(self, warning, stacklevel: int) -> None:
        pass


def serve() -> None:
    """The fork server: import what every kata run imports, then for each request fork a process
    that becomes what `python -m pytest ARGS` started cold would be, and report its exit code.

    The modules a cold run's pytest rewrites (its plugins, Hypothesis, jaxtyping, the harness's
    plugins) are imported through pytest's assertion rewriter, marked as pytest marks them, so
    that the forked run has them exactly as a cold one would."""
    import importlib
    import importlib.metadata

    environment = dict(os.environ)
    hook = None
    try:
        from _pytest.assertion.rewrite import AssertionRewritingHook

        hook = AssertionRewritingHook(_RewriteConfig())
        hook.mark_rewrite(*_rewritten_names(Path.cwd()))
        sys.meta_path.insert(0, hook)
    except Exception:  # noqa: BLE001 - another pytest: import only what pytest does not rewrite
        hook = None
    rewritten = set() if hook is not None else _rewritten_names(Path.cwd())
    # In a cold run's order: pytest's plugins (not those the configuration turns off), the harness's, the rest.
    blocked = _blocked_plugins(Path.cwd())
    entry_modules = [entry.module for entry in importlib.metadata.entry_points(group="pytest11") if entry.name not in blocked]
    for name in [*entry_modules, "harness.stream", "harness.pytest_plugin", *PRELOAD]:
        if name.split(".")[0] in rewritten or name in rewritten:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a run that needs it will import it, and fail as a cold run would
            pass
    if hook is not None:
        sys.meta_path.remove(hook)
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
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(int(code))


if __name__ == "__main__":
    serve()
