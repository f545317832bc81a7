"""The GitHub workflows: pinned actions, classroom.yml grades only with upstream's grader, and the
instructor's template grades a list of learners.

The YAML is parsed (PyYAML, a dependency of transformers) and the shell and Python the steps run
are run here where it matters: the refusal without KATAS_UPSTREAM, the list of learners, the table.
"""
import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import manifest

ROOT = manifest.ROOT
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
INSTRUCTOR = ROOT / ".github" / "instructor" / "grade-learners.yml"
CLASSROOM = ROOT / ".github" / "workflows" / "classroom.yml"
ALL = [*WORKFLOWS, INSTRUCTOR]
SHA = re.compile(r"[0-9a-f]{40}")
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="runs the steps' bash")


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML 1.1 reads the key `on` as True
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def step_named(job: dict, name: str) -> dict:
    found = [step for step in job["steps"] if step.get("name") == name]
    assert len(found) == 1, f"no single step named {name!r}"
    return found[0]


def run_step(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """A step's `run:` as GitHub runs it with `shell: bash`."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], **env}, timeout=60)


def test_upstream_ci_skips_itself_in_a_repository_made_from_the_template():
    """A learner's repository (made from this template) is not a template: there ci.yml runs nothing,
    and an edited stub (which check-stubs refuses) leaves the learner's checks green."""
    jobs = load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]
    assert jobs and all(job.get("if") == "github.event.repository.is_template" for job in jobs.values()), \
        {name: job.get("if") for name, job in jobs.items()}


def test_the_instructor_template_is_not_a_workflow_here():
    assert INSTRUCTOR.is_file() and INSTRUCTOR.parent.name == "instructor"
    assert not (ROOT / ".github" / "workflows" / INSTRUCTOR.name).exists()


@pytest.mark.parametrize("path", ALL, ids=[path.name for path in ALL])
def test_every_action_is_pinned_by_commit_sha(path):
    workflow = load(path)
    used = [(job, step["uses"]) for job, step in steps(workflow) if "uses" in step]
    assert used
    for job, uses in used:
        if uses.startswith(("./", "docker://")):
            continue
        action, _, ref = uses.partition("@")
        assert SHA.fullmatch(ref), f"{path.name}, job {job}: {uses} is not pinned to a full commit SHA"
    for line in path.read_text().splitlines():  # and the version it stands for, for a human and for Dependabot
        if re.match(r"\s*(- )?uses: [^.]", line):
            assert re.search(r"@[0-9a-f]{40}\s+# v\d", line), f"{path.name}: no `# vX.Y.Z` comment after the SHA: {line.strip()}"


@pytest.mark.parametrize("path", ALL, ids=[path.name for path in ALL])
def test_workflows_default_to_reading_only(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}


def test_classroom_has_no_fork_mode():
    text = CLASSROOM.read_text()
    assert "'fork'" not in text and "GRADER:" not in text, "the grader never comes from the learner's repository"
    grade = load(CLASSROOM)["jobs"]["grade"]
    grader = step_named(grade, "Check out the upstream grader at its pinned ref")
    assert grader["with"]["repository"] == "${{ vars.KATAS_UPSTREAM }}" and grader["with"]["ref"] == "${{ vars.KATAS_UPSTREAM_REF }}"
    assert "if" not in grader, "always upstream's grader"
    learner = step_named(grade, "Check out the learner's repository")
    assert "repository" not in learner["with"] and learner["with"]["persist-credentials"] is False
    install = step_named(grade, "Install the grader")["run"]
    assert install.strip() == "make -C grader setup", "only upstream's Makefile runs before grading"


def test_classroom_grades_as_root_and_scores_from_the_graders_reports():
    grade = load(CLASSROOM)["jobs"]["grade"]
    command = step_named(grade, "Grade")["run"]
    assert re.search(r"sudo (-E )?env \"PATH=\$PATH\" grader/\.venv/bin/kata grade --learner \"\$GITHUB_WORKSPACE/learner\" "
                     r"--out \"\$reports\"", command.replace("\\\n", " ").replace("  ", " ")), command
    assert 'reports="$RUNNER_TEMP/kata-reports"' in command, "the reports go outside the learner's checkout"
    score = step_named(grade, "Score")["run"]
    assert "GITHUB_OUTPUT" in score and "learner" not in score and "GITHUB_WORKSPACE" not in score
    assert '"$reports/classroom.b64"' in score and 'reports="$RUNNER_TEMP/kata-reports"' in score
    assert "stat -c %U" in score, "checks that root wrote the reports"


@needs_bash
def test_classroom_refuses_to_grade_without_upstream(tmp_path):
    grade = load(CLASSROOM)["jobs"]["grade"]
    first = grade["steps"][0]
    assert first["name"] == "Require the upstream grader" and "if" not in first, "the first step, always run"
    assert grade["env"]["KATAS_UPSTREAM"] == "${{ vars.KATAS_UPSTREAM }}"
    summary = tmp_path / "summary.md"
    refused = run_step(first["run"], tmp_path, KATAS_UPSTREAM="", KATAS_UPSTREAM_REF="v1", GITHUB_STEP_SUMMARY=str(summary))
    assert refused.returncode == 1
    assert "::error::not graded: set KATAS_UPSTREAM" in refused.stdout
    assert "not graded: set KATAS_UPSTREAM" in summary.read_text()
    unpinned = run_step(first["run"], tmp_path, KATAS_UPSTREAM="teacher/katas", KATAS_UPSTREAM_REF="", GITHUB_STEP_SUMMARY=str(summary))
    assert unpinned.returncode == 1 and "not graded: set KATAS_UPSTREAM_REF" in unpinned.stdout
    ready = run_step(first["run"], tmp_path, KATAS_UPSTREAM="teacher/katas", KATAS_UPSTREAM_REF="v1", GITHUB_STEP_SUMMARY=str(summary))
    assert ready.returncode == 0, ready.stdout + ready.stderr


def test_classroom_grading_job_reads_only_and_has_no_secrets():
    workflow = load(CLASSROOM)
    grade = workflow["jobs"]["grade"]
    assert grade["permissions"] == {"contents": "read"}
    assert "secrets." not in yaml.safe_dump(grade) and "github.token" not in yaml.safe_dump(grade)
    assert "secrets." not in CLASSROOM.read_text()
    for step in grade["steps"]:
        assert "token" not in step.get("with", {}), f"{step.get('name', step.get('uses'))} passes a token"
    report = workflow["jobs"]["report"]
    assert not any("run" in step for step in report["steps"]), "the job with write permission runs no code of the learner"


def test_the_instructor_workflow_grades_a_list_of_learners():
    workflow = load(INSTRUCTOR)
    assert "learners" in workflow["on"]["workflow_dispatch"]["inputs"]
    fetch, grade, table = workflow["jobs"]["fetch"], workflow["jobs"]["grade"], workflow["jobs"]["table"]
    assert "learners.txt" in step_named(fetch, "List the learners")["run"]
    assert grade["strategy"]["matrix"]["learner"] == "${{ fromJSON(needs.fetch.outputs.learners) }}"
    assert grade["strategy"]["fail-fast"] is False
    grader = step_named(grade, "Check out the upstream grader at its pinned ref")
    assert grader["with"]["repository"] == "${{ vars.KATAS_UPSTREAM }}" and grader["with"]["ref"] == "${{ vars.KATAS_UPSTREAM_REF }}"
    command = step_named(grade, "Grade")["run"]
    assert "sudo env" in command and "grader/.venv/bin/kata grade --learner" in command
    uploads = [step for step in grade["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert [step["with"]["name"] for step in uploads] == ["reports-${{ matrix.learner.slug }}"], "one report folder per learner"
    assert any(step.get("uses", "").startswith("actions/upload-artifact@") and step["with"]["path"] == "grades.csv"
               for step in table["steps"])


def test_the_instructor_workflow_keeps_secrets_away_from_learner_code():
    workflow = load(INSTRUCTOR)
    for name, job in workflow["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
    grade = workflow["jobs"]["grade"]
    assert "secrets." not in yaml.safe_dump(grade) and "github.token" not in yaml.safe_dump(grade), "learner code runs in this job"
    fetch = step_named(workflow["jobs"]["fetch"], "Fetch each learner's kata files (read-only)")
    assert "kata grade" not in fetch["run"] and "python" not in fetch["run"], "the job that holds the token runs no learner code"


@needs_bash
def test_the_instructor_workflow_lists_learners_from_the_file_or_the_input(tmp_path):
    script = step_named(load(INSTRUCTOR)["jobs"]["fetch"], "List the learners")["run"]
    (tmp_path / "instructor").mkdir()
    (tmp_path / "instructor" / "learners.txt").write_text("# my class\nada/katas\nalan/transformer-katas  # late\n\nada/katas\n")
    output = tmp_path / "output"

    def listed(**env) -> list[dict]:
        output.write_text("")
        done = run_step(script, tmp_path, GITHUB_OUTPUT=str(output), **env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(output.read_text().removeprefix("learners="))

    assert listed(LEARNERS="") == [{"repository": "ada/katas", "slug": "ada-katas"},
                                   {"repository": "alan/transformer-katas", "slug": "alan-transformer-katas"}]
    assert listed(LEARNERS="grace/k1, grace/k2") == [{"repository": "grace/k1", "slug": "grace-k1"},
                                                     {"repository": "grace/k2", "slug": "grace-k2"}]
    bad = run_step(script, tmp_path, GITHUB_OUTPUT=str(output), LEARNERS="x/y; rm -rf /")
    assert bad.returncode != 0 and "not a repository" in bad.stdout + bad.stderr


@needs_bash
def test_the_instructor_workflow_tabulates_every_learner(tmp_path):
    script = step_named(load(INSTRUCTOR)["jobs"]["table"], "The table")["run"]
    row = {"learner": "ada/katas", "commit": "0123456789abcdef", "status": "fail", "points": 12, "max_points": 55,
           "katas_done": 9, "katas": 38}
    (tmp_path / "reports" / "reports-ada-katas").mkdir(parents=True)
    (tmp_path / "reports" / "reports-ada-katas" / "row.json").write_text(json.dumps(row))
    learners = [{"repository": "ada/katas", "slug": "ada-katas"}, {"repository": "alan/katas", "slug": "alan-katas"}]
    summary = tmp_path / "summary.md"
    done = run_step(script, tmp_path, LEARNERS=json.dumps(learners), GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "grades.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert [(each["learner"], each["points"], each["status"]) for each in rows] == [("ada/katas", "12", "fail"), ("alan/katas", "", "not graded")]
    assert "| ada/katas | 12/55 | 9/38 | fail | 0123456789ab |" in summary.read_text()
    assert "| alan/katas | - | - | not graded |" in summary.read_text()


@needs_bash
@pytest.mark.skipif(shutil.which("git") is None or shutil.which("jq") is None, reason="the step runs git and jq")
def test_the_instructor_workflow_fetches_only_plain_kata_files(tmp_path):
    script = step_named(load(INSTRUCTOR)["jobs"]["fetch"], "Fetch each learner's kata files (read-only)")["run"]
    fake = tmp_path / "bin" / "gh"  # `gh repo clone REPO DIR -- ...`: a learner's repository with more than kata files
    fake.parent.mkdir()
    fake.write_text('#!/bin/bash\nset -e\ndir="$4"; mkdir -p "$dir/katas/mlp" "$dir/katas/attention" "$dir/.github"; cd "$dir"; git init -q\n'
                    'echo mine > katas/mlp/gelu_new.py; echo "def test_x(): pass" > katas/mlp/test_gelu_new.py\n'
                    'ln -s /etc/hostname katas/attention/causal_mask.py; echo hacked > .github/workflow.yml\n'
                    'git add -A; git -c user.email=l@example.com -c user.name=learner commit -qm work\n')
    fake.chmod(0o755)
    (tmp_path / "runner").mkdir()
    learners = [{"repository": "ada/katas", "slug": "ada-katas"}]
    done = run_step(script, tmp_path, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}", RUNNER_TEMP=str(tmp_path / "runner"),
                    GH_TOKEN="unused", LEARNERS=json.dumps(learners))
    assert done.returncode == 0, done.stdout + done.stderr
    fetched = tmp_path / "runner" / "learners" / "ada-katas"
    assert sorted(path.relative_to(fetched).as_posix() for path in fetched.rglob("*") if path.is_file()) == ["COMMIT", "katas/mlp/gelu_new.py"]
    assert re.fullmatch(r"[0-9a-f]{40}\n", (fetched / "COMMIT").read_text())
