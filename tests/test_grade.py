"""The grader: scores, robustness to bad learner code, integrity, and the report formats.

Each grade runs a few cheap katas (`kata grade --kata ...`); that every stub fails its whole suite is
make check-stubs' proof, not repeated here.
"""
import base64
import json
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from checkouts import learner_with, reference_of  # tests/checkouts.py: pytest puts tests/ on sys.path

from harness import manifest
from harness.grading import integrity
from harness.grading.grade import grade, write_reports
from harness.run.runner import Limits

from junit_report import read_junit

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick


@pytest.fixture(autouse=True)
def grading_from_a_working_checkout(monkeypatch):
    """These tests grade from the checkout under test, which may hold uncommitted changes."""
    monkeypatch.setenv(integrity.ALLOW_MODIFIED, "1")

ROOT = manifest.ROOT
CHEAP = ["layernorm.layer_norm", "embeddings.positional_embedding", "attention.attention_scores",
         "attention.causal_mask", "mlp.gelu_new", "attention.attention_pattern"]
BROKEN = {
    "attention.attention_scores": "raise RuntimeError('the learner broke this at import')\n",
    "mlp.gelu_new": "def gelu_new(x):\n    while True:\n        pass\n",
    "attention.causal_mask": ("import torch\n\n\ndef apply_causal_mask(scores):\n    hoard = []\n    while True:\n"
                              "        hoard.append(torch.empty(2**30, dtype=torch.uint8))\n"),
    "attention.attention_pattern": "import os\n\n\ndef attention_pattern(scores):\n    os._exit(3)\n",
}


def check_reports(out: Path, result) -> None:
    """Every report in its format: field names, types, statuses; and they agree with each other."""
    exercism = json.loads((out / "results.json").read_text())
    assert exercism["version"] == 3 and exercism["status"] in ("pass", "fail", "error")
    assert isinstance(exercism["tests"], list) and exercism["tests"]
    for test in exercism["tests"]:
        assert {"name", "status", "test_code", "task_id"} <= set(test) <= {"name", "status", "message", "output", "test_code", "task_id"}
        assert test["status"] in ("pass", "fail", "error") and isinstance(test["task_id"], int)
        assert isinstance(test["name"], str) and isinstance(test["test_code"], str) and test["test_code"].startswith("def test")
        if test["status"] != "pass":
            assert isinstance(test["message"], str) and test["message"]
            assert len(test["output"]) <= 500
    assert (exercism["status"] == "pass") == all(test["status"] == "pass" for test in exercism["tests"])

    classroom = json.loads((out / "classroom.json").read_text())
    assert json.loads(base64.b64decode((out / "classroom.b64").read_text())) == classroom
    assert classroom["version"] == 1 and classroom["status"] in ("pass", "fail", "error")
    assert classroom["max_score"] == sum(each.points for each in result.katas)
    assert [test["name"] for test in classroom["tests"]] == [f"{each.title} ({each.id})" for each in result.katas]
    for test, each in zip(classroom["tests"], result.katas):
        assert test["status"] in ("pass", "fail") and isinstance(test["message"], str) and isinstance(test["test_code"], str)
        assert test["score"] == (each.points if test["status"] == "pass" else 0), "all or nothing, so the table and Classroom agree"
    assert sum(test["score"] for test in classroom["tests"]) == result.score

    gradescope = json.loads((out / "gradescope" / "results.json").read_text())
    assert gradescope["score"] == result.score and isinstance(gradescope["execution_time"], (int, float))
    for test, each in zip(gradescope["tests"], result.katas, strict=True):
        assert {"name", "number", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["max_score"] == each.points and test["status"] in ("passed", "failed")
        assert test["score"] == (each.points if test["status"] == "passed" else 0) and test["visibility"] == "visible"
        assert test["output_format"] in ("text", "html", "simple_format", "md", "ansi")

    root = ElementTree.parse(out / "junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == [each.id for each in result.katas]
    for suite in suites.values():
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
    statuses = {kata_id: each.status for kata_id, each in read_junit(out / "junit.xml").items() if kata_id in suites}
    assert statuses == {kata_id: each.status for kata_id, each in result.results.items()}
    assert (out / "summary.md").read_text().startswith(f"## Transformer Katas: {result.score}/{result.max_score} points")


@pytest.mark.slow
def test_shipped_stubs_score_zero_and_their_reports_are_well_formed(tmp_path):
    """That every stub fails every test of its suite is make check-stubs' proof; here, the grade and
    reports of untouched stubs (two katas: the grading path is the same for all)."""
    kata_ids = ["layernorm.layer_norm", "mlp.gelu_new"]
    result = grade(learner_with(tmp_path, {}), kata_ids)
    assert result.max_score == sum(manifest.get(kata_id).points for kata_id in kata_ids) and result.score == 0
    assert {result.results[kata_id].status for kata_id in kata_ids} == {"not started"}
    write_reports(result, tmp_path / "reports")
    check_reports(tmp_path / "reports", result)


@pytest.mark.slow
def test_the_reference_copied_over_the_katas_scores_full_marks(tmp_path):
    # interp.head_detectors: its suite reads a grading file that is not code (the trained model's weights)
    kata_ids = ["layernorm.layer_norm", "attention.causal_mask", "mlp.gelu_new", "sampling.greedy", "interp.head_detectors"]
    result = grade(learner_with(tmp_path, reference_of(kata_ids)), kata_ids)
    assert result.score == result.max_score == sum(manifest.get(kata_id).points for kata_id in kata_ids)
    write_reports(result, tmp_path / "reports")
    check_reports(tmp_path / "reports", result)
    assert json.loads((tmp_path / "reports" / "results.json").read_text())["status"] == "pass"


@pytest.mark.slow
def test_bad_code_fails_its_own_kata_only(tmp_path):
    files = {**reference_of(CHEAP), **BROKEN}
    result = grade(learner_with(tmp_path, files), CHEAP, Limits(test_timeout=6, memory_gib=6))
    verdicts = {kata_id: each.status for kata_id, each in result.results.items()}
    assert verdicts["layernorm.layer_norm"] == verdicts["embeddings.positional_embedding"] == "done", result.results
    for kata_id in BROKEN:
        assert verdicts[kata_id] in ("broken", "failing") and result.results[kata_id].passed == 0, (kata_id, verdicts)
    failure = {kata_id: result.results[kata_id].first_failure for kata_id in BROKEN}
    assert "could not be imported" in failure["attention.attention_scores"]
    assert "Timeout" in failure["mlp.gelu_new"]
    assert "allocate memory" in failure["attention.causal_mask"], "the address-space cap stops the allocation"
    assert "exit code 3" in failure["attention.attention_pattern"]
    assert result.score == 2
    write_reports(result, tmp_path / "reports")
    check_reports(tmp_path / "reports", result)


def test_learner_files_are_not_grading_files():
    learner = set(integrity.learner_files())
    assert learner == {each.relative(each.file) for each in manifest.katas()}
    assert not learner & set(integrity.trusted_files())
    for must in ("manifest.toml", "conftest.py", "harness/loader.py", "katas/mlp/test_gelu_new.py", "reference/mlp/gelu_new.py",
                 "harness/models/induction.safetensors"):
        assert must in integrity.trusted_files()


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="the grader compares its files with its git commit")
def test_a_grading_file_changed_since_the_commit_is_not_graded(tmp_path, monkeypatch):
    monkeypatch.delenv(integrity.ALLOW_MODIFIED)
    for name in integrity.trusted_files() + integrity.learner_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "grader")
    assert integrity.problems(tmp_path) == [] and not integrity.fingerprint(tmp_path).endswith("(modified)")
    (tmp_path / "katas/mlp/gelu_new.py").write_text("# the learner's own file: not a grading file\n")
    (tmp_path / "katas/mlp/test_gelu_new.py").write_text("def test_nothing():\n    pass\n")
    (tmp_path / "katas/mlp/conftest.py").write_text("# a plugin slipped in\n")
    (tmp_path / "reference/mlp/gelu_new.py").unlink()
    assert sorted(integrity.problems(tmp_path)) == ["katas/mlp/conftest.py is not committed",
                                                   "katas/mlp/test_gelu_new.py differs from the commit checked out",
                                                   "reference/mlp/gelu_new.py is missing"]
    assert integrity.fingerprint(tmp_path).endswith("(modified)")
    assert integrity.fingerprint(tmp_path / "katas" / "nowhere") == "unverified (not a git checkout)"
    monkeypatch.setattr(integrity, "problems", lambda *root: ["katas/mlp/test_gelu_new.py differs from the commit checked out"])
    result = grade(ROOT, ["mlp.gelu_new"])
    assert result.error and result.score == 0 and not result.results["mlp.gelu_new"].tests
    write_reports(result, tmp_path / "reports")
    assert json.loads((tmp_path / "reports" / "results.json").read_text())["status"] == "error"
    assert json.loads((tmp_path / "reports" / "classroom.json").read_text())["tests"][0]["status"] == "error"


def test_only_the_learners_kata_files_are_staged(tmp_path):
    from harness.grading.grade import _stage

    learner = learner_with(tmp_path, reference_of(["mlp.gelu_new"]))
    (learner / "katas" / "conftest.py").write_text("raise SystemExit('a fork should not get here')\n")
    (learner / "katas" / "mlp" / "test_gelu_new.py").write_text("def test_nothing():\n    pass\n")
    staged = _stage(learner, tmp_path / "stage")
    assert not (staged / "katas" / "conftest.py").exists()
    assert (staged / "katas/mlp/test_gelu_new.py").read_text() == (ROOT / "katas/mlp/test_gelu_new.py").read_text()
    assert (staged / "katas/mlp/gelu_new.py").read_text() == manifest.get("mlp.gelu_new").reference_file.read_text()
    assert sorted(path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()) == \
        sorted(set(integrity.trusted_files()) | set(integrity.learner_files()))
