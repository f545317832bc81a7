"""Warm runs (harness.run.runner's fork server, for `kata` and `kata watch`) are as trustworthy as cold
ones: the same verdicts, the same limits, and a crash, an infinite loop or a memory blow-up in the
learner's code takes down only the forked run, never the server."""
import re
import shutil
import sys
from pathlib import Path

import pytest

from harness import manifest
from harness.run import forkserver, runner

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

needs_fork = pytest.mark.skipif(not runner.warm_available(), reason="no fork server here: runs are cold")

CAUSAL = manifest.get("attention.causal_mask")
EMBED = manifest.get("embeddings.token_embedding")
HEADER = "import os\nimport torch\n\n\ndef apply_causal_mask(scores):\n"
BAD = {
    "exit": HEADER + "    os._exit(3)\n",
    "loop": HEADER + "    while True:\n        pass\n",
    "memory": HEADER + "    return bytearray(8 << 30)\n",  # past the 4 GiB cap: MemoryError
    "wrong": HEADER + "    return scores.clone()\n",  # masks nothing: the suite's assertion messages
    "stuck": HEADER + "    import signal\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n    while True:\n        pass\n",
}

WHY = {"exit": "exit code 3", "loop": "Timeout", "memory": "MemoryError", "wrong": "apply_causal_mask",
       "stuck": "time budget"}  # stuck: deaf to the time limit's alarm, killed with its process at the kata's budget


def _outcomes(results: dict) -> dict:
    return {kata_id: sorted((test.nodeid, test.outcome, test.kind, test.message.splitlines()[0] if test.message else "")
                            for test in result.tests) for kata_id, result in results.items()}


def _messages(result) -> list:
    """Every test's outcome and message; object addresses (<... at 0x7f05...>) differ between any two processes."""
    return [(test.nodeid, test.outcome, test.kind, re.sub(r"0x[0-9a-f]+", "0x?", test.message)) for test in result.tests]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of this checkout, so that its kata files can be broken."""
    root = tmp_path_factory.mktemp("warm") / "checkout"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".kata-cache")
    for name in ("harness", "katas", "reference"):
        shutil.copytree(manifest.ROOT / name, root / name, ignore=skip)
    for name in ("conftest.py", "pyproject.toml", "manifest.toml"):
        shutil.copy(manifest.ROOT / name, root / name)
    yield root
    runner.stop_fork_server()


@needs_fork
def test_warm_and_cold_runs_give_the_same_verdicts_on_reference_and_stubs():
    for args in (("--reference",), ()):
        cold = runner.run_katas([CAUSAL, EMBED], *args)
        warm = runner.run_katas([CAUSAL, EMBED], *args, warm=True)
        assert _outcomes(warm) == _outcomes(cold)
        assert [result.protections for result in warm.values()] == [result.protections for result in cold.values()]
        assert {result.status for result in warm.values()} == ({"done"} if args else {"not started"})
    runner.stop_fork_server()


@needs_fork
def test_a_crash_loop_or_memory_blow_up_takes_down_only_the_forked_run_and_changes_are_picked_up(checkout):
    kata_file = checkout / CAUSAL.relative(CAUSAL.file)
    limits = runner.Limits(test_timeout=3, memory_gib=4, kata_budget=12)  # short: two runs (warm, cold) of each bad file
    first = runner.run_katas([EMBED], "--reference", root=checkout, limits=limits, warm=True)
    assert first[EMBED.id].status == "done"
    server = forkserver._server
    for name, source in BAD.items():
        kata_file.write_text(source)
        results = runner.run_katas([CAUSAL, EMBED], root=checkout, limits=limits, warm=True)
        cold = runner.run_katas([CAUSAL, EMBED], root=checkout, limits=limits)
        assert results[CAUSAL.id].status == cold[CAUSAL.id].status == "failing", name
        assert _messages(results[CAUSAL.id]) == _messages(cold[CAUSAL.id]), name
        assert results[EMBED.id].tests and cold[EMBED.id].tests  # the next kata was still run
        assert WHY[name] in results[CAUSAL.id].first_failure, results[CAUSAL.id].first_failure
        assert forkserver._server is server and server.alive, f"{name}: the server survived"
    kata_file.write_text(CAUSAL.reference_file.read_text())  # a save is picked up by the next warm run
    assert runner.run_katas([CAUSAL], root=checkout, limits=limits, warm=True)[CAUSAL.id].status == "done"
    assert forkserver._server is server
    (checkout / "harness" / "run" / "results.py").write_text((checkout / "harness" / "run" / "results.py").read_text() + "\n# changed\n")
    assert runner.run_katas([CAUSAL], root=checkout, limits=limits, warm=True)[CAUSAL.id].status == "done"
    assert forkserver._server is not server and not server.alive, "a harness change starts a new server"


@needs_fork
def test_runs_at_once_isolated_or_not_are_forked_side_by_side_by_one_server(checkout, monkeypatch):
    """check-mutants runs two mutants at a time, isolated as grading runs them: each run is forked
    from the one server while the other still runs, and gets the verdicts a cold run gets."""
    from concurrent.futures import ThreadPoolExecutor

    kata_file = checkout / CAUSAL.relative(CAUSAL.file)
    kata_file.write_text(BAD["wrong"])
    forked = []
    fork = forkserver._ForkServer.fork
    monkeypatch.setattr(forkserver._ForkServer, "fork", lambda self, *args: forked.append(self) or fork(self, *args))
    runner.run_katas([EMBED], "--reference", root=checkout, warm=True)  # the server is up and has imported
    server, forked[:] = forkserver._server, []
    runs = [dict(isolate=False), dict(isolate=True), dict(isolate=True), dict(isolate=False)]
    with ThreadPoolExecutor(2) as pool:
        warm = list(pool.map(lambda way: runner.run_katas([CAUSAL], root=checkout, warm=True, **way), runs))
    assert forked == [server] * len(runs) and forkserver._server is server, "every run was forked by the one server"
    for way, results in zip(runs, warm):
        cold = runner.run_katas([CAUSAL], root=checkout, **way)
        assert results[CAUSAL.id].status == cold[CAUSAL.id].status == "failing", way
        assert _messages(results[CAUSAL.id]) == _messages(cold[CAUSAL.id]), way
        assert results[CAUSAL.id].protections == cold[CAUSAL.id].protections, way


def test_where_fork_is_not_safe_a_warm_run_is_a_cold_one(monkeypatch):
    runner.stop_fork_server()
    monkeypatch.setattr(sys, "platform", "darwin")  # macOS: its frameworks are not fork-safe
    assert not runner.warm_available()
    assert runner.run_katas([EMBED], "--reference", warm=True)[EMBED.id].status == "done"
    assert forkserver._server is None, "no fork server was started"
