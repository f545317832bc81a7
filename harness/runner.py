"""Runs kata suites in a pytest subprocess that bad learner code cannot take down with it.

- An infinite loop: pytest-timeout fails the test after `test_timeout` seconds, and
  harness.stream fails the rest of that kata's tests at once.
- Unbounded allocation: the subprocess's address space is capped (RLIMIT_AS), so a huge
  allocation raises MemoryError / RuntimeError in that test instead of exhausting the machine.
- Anything that still kills or freezes the process (os._exit, a segfault, a loop in C that no
  signal interrupts): the outcomes streamed so far are kept, the test that was running fails
  its kata, and pytest is started again on the katas not yet run.

Every kata gets a verdict, and one kata's code never changes another's.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import manifest
from harness.manifest import Kata
from harness.results import KataResult, TestOutcome

DEFAULT_TEST_TIMEOUT = 90.0  # seconds per test; the slowest reference test takes 10-25 s on 2 busy cores
DEFAULT_MEMORY_GIB = 12.0  # address space of the test process; the whole reference run peaks near 3 GiB resident


@dataclass
class Limits:
    test_timeout: float = DEFAULT_TEST_TIMEOUT
    memory_gib: "float | None" = DEFAULT_MEMORY_GIB

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
) -> dict[str, KataResult]:
    """Run the suites of `katas` under `root` and return one KataResult per kata id."""
    limits = limits or Limits()
    results = {kata.id: KataResult(kata) for kata in katas}
    by_file = {_relative(kata.test_file): kata for kata in katas}
    pending = [path for path in by_file if (root / path).is_file()]
    finished_before = total = 0
    while pending:
        run = _Run(pending, pytest_args, root, limits)
        for event in run.events():
            if event["event"] == "collected":
                total = finished_before + len(event["tests"])
            elif event["event"] == "start" and progress:
                progress(finished_before + run.finished, total, by_file.get(_file_of(event["nodeid"])))
            elif event["event"] == "test":
                kata = by_file.get(_file_of(event["nodeid"]))
                if kata is not None:
                    results[kata.id].add(TestOutcome(event["nodeid"], _name_of(event["nodeid"]), event["outcome"],
                                                     event.get("message", ""), event.get("output", ""), event.get("duration", 0.0)))
                if progress:
                    progress(finished_before + run.finished, total, kata)
        if run.completed:
            break
        # The process died or froze: the test it was running fails its kata, and the katas
        # it had not reached get a fresh process.
        crashed = _file_of(run.current) if run.current else None
        if crashed is None or crashed not in by_file:
            for path in pending:
                if not results[by_file[path].id].tests:
                    results[by_file[path].id].add(TestOutcome(path, "(suite)", "failed", run.why()))
            break
        results[by_file[crashed].id].add(TestOutcome(run.current, _name_of(run.current), "failed", run.why(), run.output_tail()))
        reached = {_file_of(nodeid) for nodeid in run.reported} | {crashed}
        finished_before += run.finished
        pending = [path for path in pending if path not in reached]
    return results


class _Run:
    """One pytest subprocess, read as it goes."""

    def __init__(self, paths: list[str], pytest_args: Sequence[str], root: Path, limits: Limits):
        self.limits = limits
        self.current: "str | None" = None
        self.reported: list[str] = []
        self.completed = False
        self.stalled = False
        self._tmp = tempfile.TemporaryDirectory()
        self.events_file = Path(self._tmp.name) / "events.jsonl"
        self.events_file.touch()
        self.output_file = Path(self._tmp.name) / "output.txt"
        command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-p", "harness.stream",
                   f"--timeout={limits.test_timeout:g}", *pytest_args]
        if hasattr(signal, "SIGALRM"):
            command.append("--timeout-method=signal")  # fails the test and goes on; "thread" would end the process
        # The learner's code runs in there: no CI credentials or workflow command files (a forged
        # score written to $GITHUB_OUTPUT), and never KATA_IMPL (only --reference asks for the reference).
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("GITHUB_", "ACTIONS_")) and key != "KATA_IMPL"}
        env.update(CI=os.environ.get("CI", "1"), KATA_EVENTS=str(self.events_file), PYTHONDONTWRITEBYTECODE="1")
        if root != manifest.ROOT:  # a staged copy: its own harness, not the installed one
            env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
        with open(self.output_file, "w") as output:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_cap_memory(limits.memory_gib))

    @property
    def finished(self) -> int:
        return len(self.reported)

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
                        if event["event"] == "start":
                            self.current = event["nodeid"]
                        elif event["event"] == "test":
                            self.reported.append(event["nodeid"])
                            self.current = None
                        elif event["event"] == "finished":
                            self.completed = True
                        yield event
                    continue
                if ended:
                    break
                if self.process.poll() is not None:
                    ended = True  # one more read: what it wrote just before it ended
                    continue
                if time.monotonic() - last_news > self.limits.stall:
                    self.stalled = True
                    _kill(self.process)
                time.sleep(0.05)
        self.process.wait()
        self._returncode = self.process.returncode

    def why(self) -> str:
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
        return self.output_file.read_text(errors="replace")[-2000:]


def _cap_memory(gib: "float | None"):
    if not gib:
        return None
    try:
        import resource
    except ImportError:  # not POSIX: no cap
        return None
    limit = int(gib * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _relative(path: Path) -> str:
    return Path(path).relative_to(manifest.ROOT).as_posix()


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _name_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]
