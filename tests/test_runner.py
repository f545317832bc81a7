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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="orphans are adopted on Linux only")
def test_a_detached_grandchild_is_killed_with_its_tree():
    script = ("import os, subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")
    processes.become_subreaper()
    process = subprocess.Popen([sys.executable, "-c", script])
    processes.started(process)
    deadline = time.monotonic() + 30
    while not (grandchildren := processes._descendants(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)  # a busy machine may take a while to start it
    assert grandchildren, "the detached child started"
    processes.kill_tree(process)
    time.sleep(0.2)
    for pid in grandchildren:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
