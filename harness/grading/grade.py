"""`kata grade`: one run over every kata, and reports in the formats that graders read.

The suites run in a staged copy: the upstream grading files (as committed in the grader's
checkout: harness.grading.integrity) plus the learner's kata files, nothing else. The learner's code
runs in a worker process per kata, apart from the checker (harness.checker.isolation), contained as far
as the system allows; summary.md says which protections were in force. Reports, in --out:

    results.json             Exercism test runner interface v3 (one entry per test)
    classroom.json           GitHub Classroom grading reporter (one all-or-nothing entry per kata)
    classroom.b64            the same, base64, for the reporter's <RUNNER>_RESULTS variable
    gradescope/results.json  Gradescope (one entry per kata, points from the manifest)
    junit.xml                JUnit XML (one testsuite per kata)
    summary.md               the score as Markdown, for $GITHUB_STEP_SUMMARY

A kata scores its points when every one of its tests passes. Whatever the learner's code does,
the reports are written (and the command exits 0): the reports carry pass or fail.
"""
import ast
import base64
import json
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness import manifest
from harness.grading import integrity
from harness.manifest import Kata
from harness.run.results import KataResult
from harness.run.runner import Limits, run_katas
from harness.untrusted import Sink, shown

EXERCISM_OUTPUT_LIMIT = 500


NOT_CONTAINED = "not contained: this grade can be forged"
NO_NAMESPACES = "no namespaces"  # how a worker that could not wall itself in begins its protections line


@dataclass
class Grade:
    katas: list[Kata]
    results: dict[str, KataResult]
    problems: list[str]  # why the grade could not be given (modified grading files); empty when it was
    seconds: float
    fingerprint: str

    @property
    def error(self) -> bool:
        return bool(self.problems)

    @property
    def contained(self) -> bool:
        """Whether no worker said it ran without namespaces. A worker says what walls it raised before
        any learner code runs in it; one that never said (no learner code needed one: untouched
        stubs; or it died before it could) ran nothing uncontained."""
        return not any(line.startswith(NO_NAMESPACES) for result in self.results.values() for line in result.protections)

    @property
    def containment(self) -> str:
        """Why not contained, in the workers' words (their first protection line that says so)."""
        for result in self.results.values():
            for line in result.protections:
                if line.startswith(NO_NAMESPACES):
                    return line
        return "the workers reported no namespaces"

    def passed(self, kata: Kata) -> bool:
        return not self.error and self.results[kata.id].status == "done"

    @property
    def score(self) -> int:
        return sum(kata.points for kata in self.katas if self.passed(kata))

    @property
    def max_score(self) -> int:
        return sum(kata.points for kata in self.katas)

    @property
    def done(self) -> int:
        return sum(self.passed(kata) for kata in self.katas)


def grade(learner: Path = manifest.ROOT, kata_ids: "list[str] | None" = None, limits: "Limits | None" = None,
          progress=None, out: "Path | None" = None) -> Grade:
    """Grade the kata files of `learner` (a checkout of a fork) with the upstream suites; the
    learner's code never sees `out`, the learner's checkout, or the grading files."""
    katas = [manifest.get(kata_id) for kata_id in kata_ids] if kata_ids else list(manifest.katas())
    started = time.monotonic()
    problems = integrity.problems()
    results = {kata.id: KataResult(kata) for kata in katas}
    if not problems:
        with tempfile.TemporaryDirectory(prefix="kata-grade-") as tmp:
            staged = _stage(Path(learner), Path(tmp))
            hide = [Path(learner).resolve(), staged, *(manifest.ROOT / name for name in ("reference", "katas", "tests"))]
            if out is not None:
                hide.append(Path(out).resolve())
            results = run_katas(katas, root=staged, limits=limits, progress=progress, isolate=True, hide=hide)
    return Grade(katas, results, problems, time.monotonic() - started, integrity.fingerprint())


def _stage(learner: Path, tmp: Path) -> Path:
    """The upstream grading files and the learner's kata files, and nothing else."""
    staged = tmp / "katas-graded"
    for name in integrity.trusted_files():
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest.ROOT / name, staged / name)
    root = learner.resolve()
    for name in integrity.learner_files():
        source = learner / name
        # A plain file of the learner's own: no symlink in any component (a kata folder linked to
        # reference/ is not a solution). A missing file fails its kata: "does not exist".
        if source.is_file() and source.resolve() == root / name:
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staged / name)
    return staged


def write_reports(result: Grade, out: Path) -> list[Path]:
    """Every report, or none: all are rendered before any is written, and each is written to a
    temporary file that replaces the report in one step. Raises ReportError when that fails."""
    out = Path(out)
    written: list[Path] = []
    try:
        files = _render_reports(result, out)
        (out / "gradescope").mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            written.append(path.with_name(f".{path.name}.partial"))
            written[-1].write_text(text, encoding="utf-8")
        for path in files:  # every report is whole on disk: now they take their names
            os.replace(path.with_name(f".{path.name}.partial"), path)
    except (OSError, ValueError, TypeError) as error:
        for temporary in written:
            temporary.unlink(missing_ok=True)
        raise ReportError(f"the reports could not be written to {out}: {type(error).__name__}: {error}") from error
    return list(files)


class ReportError(RuntimeError):
    """The grader could not write its reports: a grader error, never a partial set passed off as a grade."""


def _render_reports(result: Grade, out: Path) -> dict[Path, str]:
    classroom_report = classroom(result)
    return {
        out / "results.json": json.dumps(exercism(result), indent=1),
        out / "classroom.json": json.dumps(classroom_report, indent=1),
        out / "classroom.b64": base64.b64encode(json.dumps(classroom_report).encode()).decode() + "\n",
        out / "gradescope" / "results.json": json.dumps(gradescope(result), indent=1),
        out / "junit.xml": junit(result),
        out / "summary.md": summary(result),
    }


def _overall(result: Grade) -> str:
    if result.error:
        return "error"
    return "pass" if result.done == len(result.katas) else "fail"


def _error_message(result: Grade) -> str:
    return ("not graded: the grading files differ from upstream (tests, manifest, harness and reference "
            "must be upstream's; only files under katas/ are yours):\n" + "\n".join(result.problems))


def _kata_message(result: Grade, kata: Kata) -> str:
    kata_result = result.results[kata.id]
    if result.error:
        return _error_message(result)
    if kata_result.status == "done":
        return ""
    if kata_result.status == "no tests":
        return "no test of this kata ran"
    return f"{kata_result.status}: {kata_result.first_failure}"


def exercism(result: Grade) -> dict:
    report = {"version": 3, "status": _overall(result)}
    if result.error:
        report["message"] = _error_message(result)
    elif not result.contained:
        report["message"] = f"{NOT_CONTAINED} ({result.containment})"
    tests = []
    for number, kata in enumerate(result.katas, start=1):
        for test in result.results[kata.id].tests:
            entry = {"name": shown(f"{kata.title}: {test.name}"), "status": "pass" if test.outcome == "passed" else "fail",
                     "test_code": _test_code(kata, test.name), "task_id": number}
            if test.outcome == "skipped":
                continue  # the interface has no "skipped"
            if test.outcome != "passed":
                entry["message"] = shown(test.message or "failed")
                entry["output"] = shown((test.output or test.message)[:EXERCISM_OUTPUT_LIMIT])
            tests.append(entry)
    report["tests"] = tests
    return report


def classroom(result: Grade) -> dict:
    tests = []
    for kata in result.katas:
        passed = result.passed(kata)
        tests.append({
            "name": f"{kata.title} ({kata.id})",
            "status": "error" if result.error else ("pass" if passed else "fail"),
            "score": kata.points if passed else 0,
            "message": shown(_kata_message(result, kata)[:1000]),
            "test_code": f"pytest {kata.relative(kata.test_file)}",
            "filename": kata.relative(kata.file),
            "line_no": 0,
            "execution_time": f"{sum(test.duration for test in result.results[kata.id].tests):.2f}s",
        })
    return {"version": 1, "status": _overall(result), "max_score": result.max_score, "tests": tests}


def gradescope(result: Grade) -> dict:
    tests = []
    for number, kata in enumerate(result.katas, start=1):
        kata_result = result.results[kata.id]
        passed = result.passed(kata)
        tests.append({
            "name": f"{kata.title} ({kata.id})",
            "number": str(number),
            "score": kata.points if passed else 0,
            "max_score": kata.points,
            "status": "passed" if passed else "failed",
            "output": shown(_kata_message(result, kata) or f"{kata_result.passed} tests passed"),
            "output_format": "text",
            "visibility": "visible",
            "execution_time": round(sum(test.duration for test in kata_result.tests), 3),
        })
    report = {"score": result.score, "execution_time": round(result.seconds, 3), "output": summary(result),
              "output_format": "md", "visibility": "visible", "stdout_visibility": "visible", "tests": tests}
    return report


def junit(result: Grade) -> str:
    suites = ElementTree.Element("testsuites", name="transformer-katas", time=f"{result.seconds:.3f}")
    if result.error:
        suite = ElementTree.SubElement(suites, "testsuite", name="grading files", tests="1", failures="0", errors="1", skipped="0")
        case = ElementTree.SubElement(suite, "testcase", classname="integrity", name="grading files are upstream's")
        ElementTree.SubElement(case, "error", message="grading files differ from upstream").text = shown(_error_message(result), Sink.XML)
    for kata in result.katas:
        kata_result = result.results[kata.id]
        failures = sum(test.outcome == "failed" for test in kata_result.tests)
        skipped = sum(test.outcome == "skipped" for test in kata_result.tests)
        suite = ElementTree.SubElement(
            suites, "testsuite", name=kata.id, tests=str(len(kata_result.tests)), failures=str(failures), errors="0",
            skipped=str(skipped), time=f"{sum(test.duration for test in kata_result.tests):.3f}")
        properties = ElementTree.SubElement(suite, "properties")
        ElementTree.SubElement(properties, "property", name="points", value=str(kata.points))
        ElementTree.SubElement(properties, "property", name="status", value=kata_result.status)
        ElementTree.SubElement(properties, "property", name="contained", value=str(result.contained).lower())
        classname = f"katas.{kata.folder}.test_{kata.name}"
        for test in kata_result.tests:
            case = ElementTree.SubElement(suite, "testcase", classname=classname, name=shown(test.name, Sink.XML),
                                          time=f"{test.duration:.3f}")
            if test.outcome == "failed":
                ElementTree.SubElement(case, "failure", message=shown(test.message.splitlines()[0] if test.message else "failed", Sink.XML),
                                       type=str(test.kind or "failure")).text = shown(test.output or test.message, Sink.XML)
            elif test.outcome == "skipped":
                ElementTree.SubElement(case, "skipped", message=shown(test.message, Sink.XML))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def summary(result: Grade) -> str:
    lines = [f"## Transformer Katas: {result.score}/{result.max_score} points",
             "", f"{result.done} of {len(result.katas)} katas done. Grading files fingerprint: `{result.fingerprint}`.", ""]
    if not result.contained:
        lines += [f"**{NOT_CONTAINED}** ({shown(result.containment, Sink.MARKDOWN)})", ""]
    if result.error:
        lines += ["**Not graded**: " + shown(_error_message(result), Sink.MARKDOWN), ""]
    lines += ["| # | kata | status | points | first failure |", "|---|---|---|---|---|"]
    numbers = {each.id: number for number, each in enumerate(manifest.katas(), start=1)}  # the curriculum's, graded or not
    for kata in result.katas:
        number = numbers.get(kata.id, "")
        kata_result = result.results[kata.id]
        status = "error" if result.error else kata_result.status
        failure = shown(kata_result.first_failure, Sink.MARKDOWN) if status not in ("done", "not started") else ""
        lines.append(f"| {number} | {kata.title} | {status} | {kata.points if result.passed(kata) else 0}/{kata.points} | {failure} |")
    lines += ["", "Protections in force while the learner's code ran:", *[f"- {shown(line, Sink.MARKDOWN)}" for line in protections(result)]]
    return "\n".join(lines) + "\n"


def protections(result: Grade) -> list[str]:
    """What kept the learner's code from the checker, as the workers reported it (the same for every kata, usually)."""
    seen: list[str] = []
    for kata in result.katas:
        for line in result.results[kata.id].protections:
            if line not in seen:
                seen.append(line)
    return seen or ["none: no kata's code ran"]


def _test_code(kata: Kata, test_name: str) -> str:
    """The test function's source, for Exercism's test_code."""
    return _test_functions(kata.test_file).get(test_name.split("[")[0].split("::")[-1], "")


@lru_cache(maxsize=None)
def _test_functions(path: Path) -> dict[str, str]:
    try:
        source = Path(path).read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError):
        return {}
    return {node.name: ast.get_source_segment(source, node) or "" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}
