"""The learner's command, `kata`: status, next, hint, watch, demo, and its table of subcommands."""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from harness import manifest
from harness.commands import cli, status
from harness.commands.watch import wait_for_change

ROOT = manifest.ROOT
FIRST = manifest.katas()[0]


def kata(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`kata ARGS` as a learner's shell runs it, output captured (so not a terminal)."""
    env = {key: value for key, value in os.environ.items() if key not in ("FORCE_COLOR", "KATA_IMPL")}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**env, "TERM": "dumb"}, timeout=timeout)


def untouched() -> bool:
    return all(status.is_untouched(each) for each in manifest.katas())


needs_stubs = pytest.mark.skipif(not untouched(), reason="katas/ holds a learner's work: these tests need the shipped stubs")


@needs_stubs
def test_on_a_fresh_clone_nothing_is_done_and_the_first_kata_is_next():
    done = kata()
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout, "not a terminal: no colour codes"
    assert f"0 of {len(manifest.katas())} katas done." in done.stdout
    assert f"Next: {FIRST.title} ({FIRST.id})" in done.stdout
    assert f"open  {FIRST.relative(FIRST.file)}" in done.stdout
    assert f"run   pytest {FIRST.relative(FIRST.test_file)}" in done.stdout
    assert f"kata hint {FIRST.id}" in done.stdout
    for number, each in enumerate(manifest.katas(), start=1):
        assert f"{number:>3}  not started {each.title}" in done.stdout


@needs_stubs
def test_status_json_is_for_scripts():
    report = json.loads(kata("status", "--json").stdout)
    assert report["done"] == 0 and report["total"] == len(manifest.katas())
    assert report["max_points"] == sum(each.points for each in manifest.katas()) and report["points"] == 0
    assert [entry["id"] for entry in report["katas"]] == [each.id for each in manifest.katas()]
    assert {entry["status"] for entry in report["katas"]} == {"not started"}
    assert report["next"]["id"] == FIRST.id and report["next"]["file"] == FIRST.relative(FIRST.file)


@needs_stubs
def test_next_shows_only_the_next_kata():
    done = kata("next")
    assert done.stdout.strip().splitlines()[-4:] == [
        f"Next: {FIRST.title} ({FIRST.id})", f"  open  {FIRST.relative(FIRST.file)}",
        f"  run   pytest {FIRST.relative(FIRST.test_file)}", f"  hint  kata hint {FIRST.id}"]
    assert "katas done" not in done.stdout


@pytest.mark.slow
def test_a_kata_that_passes_is_done():
    report = json.loads(kata("--reference", "--kata", "mlp.gelu_new", "--json").stdout)
    assert [(entry["id"], entry["status"]) for entry in report["katas"]] == [("mlp.gelu_new", "done")]
    assert report["katas"][0]["passed"] > 0 and report["next"] is None


def test_hints_come_one_level_at_a_time():
    each = manifest.get("attention.causal_mask")
    first, second = kata("hint", each.id).stdout, kata("hint", each.id, "--level", "2").stdout
    assert each.hints[0] in first and each.hints[1] not in first
    assert f"kata hint {each.id} --level 2" in first
    assert each.hints[0] in second and each.hints[1] in second


def test_python_dash_m_harness_keeps_its_commands():
    assert kata("progress", "--help").returncode == 0
    assert "check-mutants" in kata("--help").stdout
    stub = kata("stub", "mlp.gelu_new").stdout
    assert stub == manifest.get("mlp.gelu_new").file.read_text() or not untouched()



def test_a_kata_goes_by_its_number_name_symbol_or_file_everywhere():
    number = [k.id for k in manifest.katas()].index("mlp.gelu_new") + 1
    by_id = kata("stub", "mlp.gelu_new").stdout
    for name in (str(number), "gelu_new", "katas/mlp/gelu_new.py", "katas/mlp/test_gelu_new.py"):
        assert kata("stub", name).stdout == by_id, name
    unknown = kata("stub", "no_such_kata")
    assert unknown.returncode == 2 and "no kata 'no_such_kata'" in unknown.stdout + unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr

def test_every_subcommand_is_in_the_table(monkeypatch):
    names = set(cli.parser()._subparsers._group_actions[0].choices)
    assert {"status", "progress", "next", "hint", "watch", "demo", "explore", "grade", "hashes", "train"} <= names
    # a module offering configure_parser and run joins with one entry (as `kata train` did)
    fake = cli.Command("fake", "a fake command", cli._configure_from("fake_kata_command"), cli._lazy("fake_kata_command", "run"))
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, fake])
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    assert cli.main(["fake", "--answer", "42"]) == 42


def test_the_help_summary_names_every_command():
    learners, instructors = cli.__doc__.split("Instructors:")
    listed = set(re.findall(r"^ +kata ([a-z-]+)", learners, re.M)) | set(re.findall(r"[a-z][a-z-]+", instructors.splitlines()[0]))
    missing = {command.name for command in cli.COMMANDS if command.name != "status"} - listed  # status: plain `kata`
    assert not missing, f"kata --help's summary leaves out {sorted(missing)}"


@pytest.mark.parametrize("poll", [True, False])
def test_watch_notices_a_saved_file(tmp_path, poll):
    kata_file = tmp_path / "kata.py"
    kata_file.write_text("x = 1\n")

    def save_later():
        time.sleep(0.5)
        kata_file.write_text("x = 2\n")

    saver = threading.Thread(target=save_later)
    saver.start()
    started = time.monotonic()
    wait_for_change(tmp_path, poll=poll, interval=0.2)
    saver.join()
    assert 0.4 < time.monotonic() - started < 10


def test_demo_generates_with_a_checkpoint_and_says_what_it_used(tmp_path, capsys):
    import torch

    from harness import loader, parts
    from harness.checkpoint import save_checkpoint
    from harness.config import Config

    torch.manual_seed(0)
    path = save_checkpoint(parts.GPT2(Config(d_model=32, n_heads=2, n_layers=1, n_ctx=64)), tmp_path / "tiny.safetensors")
    try:
        assert cli.main(["demo", "--reference", "--checkpoint", str(path), "--tokens", "4", "Hello"]) == 0
    finally:
        loader.use_learner_parts(set())
    out = capsys.readouterr().out
    assert "Yours: none yet" in out and f"weights from {path}" in out and "1 layers, d_model 32" in out
    assert "without the cache (generate):" in out and "tokens/s" in out
    cached = any(each.symbol == "generate_with_cache" for each in manifest.katas())
    assert ("with the KV cache" in out) if cached else ("not in manifest.toml yet" in out)


@pytest.mark.parametrize("name", ["attention.causal_mask", "5", "causal_mask", "apply_causal_mask",
                                  "katas/attention/causal_mask.py", "katas/attention/test_causal_mask.py"])
def test_a_kata_is_found_by_id_number_name_symbol_or_file(name):
    assert manifest.find(name).id == "attention.causal_mask"


def test_an_unknown_kata_is_a_clear_error_listing_them():
    with pytest.raises(KeyError, match="give its id, number, name or file.*5 attention.causal_mask"):
        manifest.find("causal")


@needs_stubs
def test_hint_takes_any_name_and_defaults_to_the_next_kata():
    by_number = kata("hint", "5")
    assert by_number.returncode == 0 and manifest.get("attention.causal_mask").hints[0] in by_number.stdout
    default = kata("hint")
    assert default.returncode == 0 and FIRST.hints[0] in default.stdout, default.stdout
    assert kata("hint", "no_such_kata").returncode == 2


def test_verdicts_are_cached_by_content_and_fresh_reruns(tmp_path, monkeypatch):
    from harness.run import runner, verdict_cache
    from harness.run.results import KataResult, TestOutcome

    kata_ = manifest.get("mlp.gelu_new")
    source = tmp_path / "gelu_new.py"
    source.write_text("# a learner's work\n")
    monkeypatch.setattr(verdict_cache, "CACHE", tmp_path / "cache" / "verdicts.json")
    monkeypatch.setattr(manifest.Kata, "source", lambda self, root: source)
    monkeypatch.setattr(status, "is_untouched", lambda each: False)
    runs = []

    def fake_run(katas, *args, **kwargs):
        runs.append([each.id for each in katas])
        result = KataResult(kata_)
        result.add(TestOutcome("n", "test_one", "passed"))
        return {kata_.id: result}

    monkeypatch.setattr(runner, "run_katas", fake_run)
    assert status.collect([kata_], quiet=True)[kata_.id].status == "done"
    assert status.collect([kata_], quiet=True)[kata_.id].status == "done" and len(runs) == 1, "unchanged: the cached verdict"
    source.write_text("# changed\n")
    status.collect([kata_], quiet=True)
    assert len(runs) == 2, "a changed kata file runs again"
    status.collect([kata_], quiet=True, fresh=True)
    assert len(runs) == 3, "--fresh ignores the cache"


@pytest.mark.subprocess
def test_pytest_on_a_kata_file_runs_its_suite():
    done = subprocess.run([sys.executable, "-m", "pytest", "katas/mlp/gelu_new.py", "--reference", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "1"})
    assert done.returncode == 0 and re.search(r"\d+ passed", done.stdout), done.stdout[-1000:]


def test_a_save_made_while_the_tests_ran_is_not_lost(tmp_path):
    from harness.commands.watch import snapshot

    kata_file = tmp_path / "kata.py"
    kata_file.write_text("x = 1\n")
    before_run = snapshot(tmp_path)
    time.sleep(0.01)
    kata_file.write_text("x = 2\n")  # saved during the run
    started = time.monotonic()
    wait_for_change(tmp_path, poll=True, interval=5, since=before_run)
    assert time.monotonic() - started < 1, "the save during the run starts the next run at once"


def test_solution_is_shown_only_once_the_kata_passes_with_why_it_matters(monkeypatch, capsys):
    from harness.run.results import KataResult, TestOutcome

    kata_ = manifest.get("attention.causal_mask")
    result = KataResult(kata_)
    monkeypatch.setattr(cli, "collect", lambda katas, **kwargs: {kata_.id: result})
    result.add(TestOutcome("n", "test_one", "failed", "AssertionError: wrong"))
    assert cli.main(["solution", "5"]) == 1
    out = capsys.readouterr().out
    assert "torch.triu" not in out and "AssertionError: wrong" in out and "kata hint attention.causal_mask" in out
    result.tests.clear()
    result.failed = 0
    result.add(TestOutcome("n", "test_one", "passed"))
    assert result.status == "done"
    assert cli.main(["solution", "causal_mask"]) == 0
    out = capsys.readouterr().out
    assert kata_.why[:40] in out and "torch.triu" in out and "reference/attention/causal_mask.py" in out


def test_solution_without_a_name_shows_the_last_kata_done(monkeypatch, capsys):
    from harness.run.results import KataResult, TestOutcome

    results = {kata.id: KataResult(kata) for kata in manifest.katas()}
    monkeypatch.setattr(cli, "collect", lambda katas, **kwargs: {kata.id: results[kata.id] for kata in katas})
    assert cli.main(["solution"]) == 1 and "No kata is done yet" in capsys.readouterr().out
    for kata_id in ("layernorm.layer_norm", "attention.causal_mask"):  # the causal mask comes later in the curriculum
        results[kata_id].add(TestOutcome("n", "test_one", "passed"))
    assert cli.main(["solution"]) == 0
    assert "Causal mask: done" in capsys.readouterr().out


def test_watch_reruns_a_saved_kata_that_was_done_and_makes_a_regression_current(monkeypatch, capsys):
    from harness.commands import watch
    from harness.run import runner
    from harness.run.results import KataResult, TestOutcome

    order = list(manifest.katas())
    current = manifest.get("attention.attention_pattern")
    done_before = [kata for kata in order[:order.index(current)]]
    before = {str(kata.file): 1 for kata in order}
    saved = manifest.get("layernorm.layer_norm")
    monkeypatch.setattr(watch, "snapshot", lambda folder: {**before, str(saved.file): 2, str(current.file): 2})
    assert watch.changed_katas(before, order, current) == [saved] and saved in done_before

    def verdicts(katas, *args, **kwargs):
        result = KataResult(katas[0])
        result.add(TestOutcome("n", "test_one", "failed", "wrong"))
        return {katas[0].id: result}

    monkeypatch.setattr(runner, "run_katas", verdicts)
    from harness.commands.status import console

    assert watch._regression([saved], console) is saved
    out = capsys.readouterr().out
    assert "Regression" in out and saved.title in out


def test_watch_reads_keys_while_waiting_and_none_without_a_terminal(tmp_path):
    from harness.commands.watch import Keys

    (tmp_path / "kata.py").write_text("x = 1\n")

    class Pressed:
        active = True

        def read(self):
            return "h"

    started = time.monotonic()
    assert wait_for_change(tmp_path, interval=5, keys=Pressed(), wanted="hq") == "h"
    assert time.monotonic() - started < 3, "a key is answered at once, not after the next poll"
    with Keys(stream=open(os.devnull)) as keys:  # not a terminal: no keys
        assert not keys.active and keys.read() is None
