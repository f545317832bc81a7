"""The one way to run kata suites: `kata`, `kata watch`, `kata grade`, check-stubs and check-mutants
all call run_katas, which runs pytest in a subprocess and reads its outcomes as they stream.

Bad learner code cannot take the verdicts down with it:
- an infinite loop: pytest-timeout fails the test after `test_timeout` seconds, and
  harness.checker.events fails the rest of that kata's tests at once;
- unbounded allocation: the address space of the process running the learner's code is capped,
  so a huge allocation fails that test instead of exhausting the machine;
- anything that still kills or freezes the test process (os._exit, a segfault, a loop in C that no
  signal interrupts): the outcomes streamed so far are kept, the test that was running fails its
  kata, and pytest is started again on the katas not yet run;
- budgets: a kata that runs longer than `kata_budget` seconds in all, or a run longer than
  `budget`, is stopped with SIGKILL, and everything it started with it.

With `isolate` (always for `kata grade`) the learner's code runs in a worker process per kata,
apart from the checker that runs the suites (harness.checker.isolation); the outcomes say which
protections were in force. Every limit is applied where the system offers it, and the results
say which ones were.

With `warm` (`kata`, `kata watch`, check-mutants, the mutation tool), pytest is not started cold
each time: harness.run.forkserver forks a process per run from a server that imported torch and the
rest once; a forked run is read, limited and killed exactly as a cold one. Where fork is not safe
(not Linux) or KATA_COLD is set, runs are cold. Grading is always cold.
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness import failures, manifest
from harness.checker.settings import CheckerSettings
from harness.failures import FailureKind
from harness.manifest import Kata
from harness.run import processes
from harness.run.forkserver import server_for, stop_fork_server, warm_available  # noqa: F401 - the runner's API
from harness.run.results import KataResult, TestOutcome

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
    # torch threads of each checker (and its worker). Runs side by side need 1 each: two processes of
    # two spinning threads apiece on two cores made one mutant's run take 162 s instead of 6 s.
    threads: "int | None" = None

    @property
    def stall(self) -> float:
        """Seconds without any news from pytest after which it is killed (covers collection too)."""
        return self.test_timeout + 60


def threads_side_by_side(jobs: int) -> int:
    """torch threads for each of `jobs` runs going at once, so that together they use each core once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, jobs))


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
    plan = RunPlan(tuple(pytest_args), root, limits, isolate, tuple(hide), warm and warm_available(),
                   time.monotonic() + limits.budget if limits.budget else None)
    with processes.adopting_orphans():
        return _run_all(katas, plan, progress)


@dataclass(frozen=True)
class RunPlan:
    """What one run_katas call starts each of its pytest processes with."""
    pytest_args: tuple
    root: Path
    limits: Limits
    isolate: bool
    hide: tuple
    warm: bool
    deadline: "float | None"  # time.monotonic() past which everything is stopped


def _run_all(katas: Sequence[Kata], plan: RunPlan, progress: "Progress | None") -> dict[str, KataResult]:
    results = {kata.id: KataResult(kata) for kata in katas}
    by_file = {manifest.shown(kata.test_file): kata for kata in katas}
    pending = [path for path in by_file if (plan.root / path).is_file()]
    finished_before = 0
    while pending:
        run = _Run(pending, plan)
        _read_run(run, results, by_file, finished_before, progress)
        if run.completed:
            break
        # The process died, froze or ran out of time: the test it was running fails its kata,
        # and the katas it had not reached get a fresh process (unless the whole run is out of time).
        crashed = _file_of(run.current) if run.current else None
        if crashed in by_file and run.current:
            results[by_file[crashed].id].add(run.failure(run.current, _name_of(run.current)))
        if crashed is None or crashed not in by_file or run.out_of_budget:
            for path in pending:
                if not results[by_file[path].id].tests:
                    results[by_file[path].id].add(run.failure(path, "(suite)"))
            break
        reached = {_file_of(nodeid) for nodeid in run.reported} | {crashed}
        finished_before += run.finished
        pending = [path for path in pending if path not in reached]
    for kata in katas:
        if plan.isolate and not results[kata.id].protections:
            results[kata.id].protections = ["a worker process of its own (it did not report its protections)"]
        elif not plan.isolate:
            results[kata.id].protections = run.limits_in_force()
    return results


def _read_run(run: "_Run", results: dict, by_file: dict, finished_before: int, progress: "Progress | None") -> None:
    """Fold one pytest process's events into `results` as they come, reporting progress."""
    total = 0
    for event in run.events():
        kata = by_file.get(_file_of(event.get("nodeid", "")))
        if event["event"] == "collected":
            total = finished_before + len(event["tests"])
        elif event["event"] == "protections" and event.get("kata") in results:
            results[event["kata"]].protections = list(event["protections"])
        elif event["event"] == "test" and kata is not None:
            results[kata.id].add(TestOutcome(event["nodeid"], _name_of(event["nodeid"]), event["outcome"], event.get("message", ""),
                                             event.get("output", ""), event.get("duration", 0.0), failures.parse(event.get("kind", "")),
                                             bool(event.get("recognised"))))
        if progress and event["event"] in ("start", "test"):
            progress(finished_before + run.finished, total, kata)


class _Run:
    """One pytest subprocess, read as it goes."""

    def __init__(self, paths: list[str], plan: RunPlan):
        pytest_args, root, limits, isolate, hide, warm = plan.pytest_args, plan.root, plan.limits, plan.isolate, plan.hide, plan.warm
        self.limits, self.deadline, self.isolate = limits, plan.deadline, isolate
        self.current: "str | None" = None
        self.current_file: "str | None" = None
        self.kata_started = time.monotonic()
        self.reported: list[str] = []
        self.completed = False
        self.stalled = self.out_of_kata_budget = self.out_of_budget = False
        self._tmp = tempfile.TemporaryDirectory(prefix="kata-run-")
        # The checker sends its events over a socket only it holds: it connects first thing, and
        # once that one connection is accepted the path is gone (a worker cannot send verdicts).
        self.events_address = str(Path(self._tmp.name) / "events.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.events_address)
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.connection: "socket.socket | None" = None
        self.output_file = Path(self._tmp.name) / "output.txt"
        command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-p", "harness.checker.events",
                   f"--timeout={limits.test_timeout:g}", *pytest_args]
        if hasattr(signal, "SIGALRM"):
            command.append("--timeout-method=signal")  # fails the test and goes on; "thread" would end the process
        if isolate:
            command.append("--isolate")
        env = _environment(root)
        run = CheckerSettings(events=self.events_address, threads=limits.threads)
        if isolate:
            run = replace(run, hide=tuple(str(path) for path in [*hide, self._tmp.name]),
                          worker_memory_gib=limits.memory_gib or 0.0, worker_cpu_seconds=limits.kata_budget or None)
        env.update(run.to_env())
        self.output_file.touch()
        server = server_for(root, env) if warm else None
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
    def kind(self) -> FailureKind:
        if self.out_of_budget or self.out_of_kata_budget:
            return FailureKind.BUDGET
        return FailureKind.TIMEOUT if self.stalled else FailureKind.CRASH

    def _read_events(self) -> "bytes | None":
        """What the checker sent since the last call (b"" when nothing; None once it closed)."""
        if self.connection is None:
            try:
                self.connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return b""
            self.listener.close()
            os.unlink(self.events_address)
            self.connection.setblocking(False)
        try:
            return self.connection.recv(1 << 20) or None
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None

    def events(self):
        last_news = time.monotonic()
        ended = closed = False
        buffer = b""
        while True:
            chunk = b"" if closed else self._read_events()
            if chunk is None:
                closed, chunk = True, b""
            if chunk:
                last_news = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
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
            if self._out_of_time(last_news):
                processes.kill_tree(self.process)
                ended = True
                continue
            self._wait_for_news(closed)
        self._close()

    def _out_of_time(self, last_news: float) -> bool:
        """Whether a limit is reached: no news for too long, the kata's budget, or the whole run's."""
        now = time.monotonic()
        if now - last_news > self.limits.stall:
            self.stalled = True
        elif self.limits.kata_budget and self.current_file and now - self.kata_started > self.limits.kata_budget:
            self.out_of_kata_budget = True
        elif self.deadline is not None and now > self.deadline:
            self.out_of_budget = True
        return self.stalled or self.out_of_kata_budget or self.out_of_budget

    def _wait_for_news(self, closed: bool) -> None:
        if closed:
            time.sleep(0.05)
        else:
            select.select([self.connection or self.listener], [], [], 0.05)

    def _close(self) -> None:
        processes.kill_tree(self.process)  # whatever the tests left behind goes too
        code = self.process.poll()
        if self.completed and self.isolate and code is not None and code < 0:
            self.completed = False  # a checker killed by a signal never finished, whatever it said before
        for each in (self.connection, self.listener):
            if each is not None:
                each.close()

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

    def failure(self, nodeid: str, name: str) -> TestOutcome:
        """The outcome of the test (or suite) this process was running when it died, froze or ran out of time."""
        return TestOutcome(nodeid, name, "failed", self.why(), self.output_tail(), kind=self.kind)

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


def start_fork_server(root: Path = manifest.ROOT) -> None:
    """Start the fork server now (it imports in the background) so that the first warm run finds it ready."""
    if warm_available():
        server_for(root, _environment(root))
