"""The one runner (harness.run.runner, harness.run.processes) where the system lacks a limit: every limit is
applied where it exists, the verdicts come all the same, and the results say what was in force."""
import os
import subprocess
import sys
import time

import pytest

from harness import manifest
from harness.run import processes, runner
from harness.sandbox.worker import _limit_resources

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

KATA = manifest.get("mlp.gelu_new")


def test_without_prlimit_the_suite_still_runs_and_says_memory_was_not_capped(monkeypatch):
    import resource

    monkeypatch.delattr(resource, "prlimit")  # macOS has none
    result = runner.run_katas([KATA], "--reference")[KATA.id]
    assert result.status == "done"
    assert "no cap on memory" in " ".join(result.protections)


def test_with_prlimit_the_memory_cap_is_reported():
    result = runner.run_katas([KATA], "--reference")[KATA.id]
    assert result.status == "done" and "address space capped at" in " ".join(result.protections)


def test_without_process_groups_a_process_is_still_killed(monkeypatch):
    monkeypatch.delattr(os, "killpg")  # Windows has none
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    processes.started(process)
    started = time.monotonic()
    processes.kill_tree(process)
    assert process.poll() is not None and time.monotonic() - started < 10


def test_a_limit_the_system_refuses_is_left_out_and_the_rest_applied(monkeypatch):
    import resource

    def setrlimit(which, limits):  # as macOS answers for the address space; the others are recorded, not set
        if which == resource.RLIMIT_AS:
            raise ValueError("not allowed on this system")

    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    protections = []
    _limit_resources({"memory_bytes": 2**30, "cpu_seconds": 10}, protections)
    applied = protections[0].split("limits on ")[1].split(", ")
    assert "as" not in applied and "cpu" in applied and "fsize" in applied


ON_LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="orphans are adopted on Linux only")
DETACHED_GRANDCHILD = ("import subprocess, sys, time\n"
                       "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
                       "print(child.pid, flush=True)\n"
                       "time.sleep(60 if sys.argv[1] == 'stay' else 0)\n")


def _alive(pid: int) -> bool:
    fields = processes._stat(pid)
    return fields is not None and fields[0] != b"Z"


@ON_LINUX
@pytest.mark.parametrize("parent", ["stays", "leaves"])
def test_a_detached_grandchild_is_killed_with_its_run_and_nothing_else(parent):
    """The run's process starts a grandchild in a session of its own (and, in one case, exits at once:
    the grandchild is an orphan handed to us). An unrelated child of ours, in our own session (a
    notebook kernel's subprocess), survives; the subreaper flag is as it was afterwards."""
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    before = processes.is_subreaper()
    try:
        with processes.adopting_orphans():
            process = subprocess.Popen([sys.executable, "-c", DETACHED_GRANDCHILD, "stay" if parent == "stays" else "go"],
                                       stdout=subprocess.PIPE, start_new_session=True)
            processes.started(process)
            grandchild = int(process.stdout.readline())
            if parent == "leaves":
                process.wait(timeout=30)
            processes.kill_tree(process)
            deadline = time.monotonic() + 10
            while _alive(grandchild) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(grandchild), "the run's detached grandchild was killed"
        assert unrelated.poll() is None, "a child of ours in our own session was left alone"
        assert processes.is_subreaper() == before, "the subreaper flag is restored after the last run"
    finally:
        unrelated.kill()
        unrelated.wait()


NOTEBOOK_KERNEL = """
import subprocess, sys
from harness import manifest
from harness.notebook import check
from harness.run import processes

unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
before = processes.is_subreaper()
kata = manifest.get("mlp.gelu_new")
result = check(kata.id, source=kata.reference_file.read_text())
print("VERDICT", result.status, unrelated.poll() is None, processes.is_subreaper() == before, flush=True)
unrelated.kill()
"""


@ON_LINUX
@pytest.mark.subprocess
def test_a_notebook_check_leaves_the_kernels_children_and_flags_as_it_found_them():
    done = subprocess.run([sys.executable, "-c", NOTEBOOK_KERNEL], capture_output=True, text=True, timeout=300, cwd=manifest.ROOT)
    assert "VERDICT done True True" in done.stdout, done.stdout + done.stderr
