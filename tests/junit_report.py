"""Verdicts per kata read back from the grader's JUnit XML report (each failure's `type` is its kind)."""
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from harness import manifest
from harness.run.results import KataResult, TestOutcome


def read_junit(report: Path) -> dict[str, KataResult]:
    results = {kata.id: KataResult(kata) for kata in manifest.katas()}
    by_module = {f"katas.{kata.folder}.test_{kata.name}": kata.id for kata in manifest.katas()}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kata_id = by_module.get(case.get("classname", ""))
        if kata_id is None:
            continue
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            test = TestOutcome("", case.get("name"), "failed", (problem.get("message") or problem.text or "").strip(),
                               kind=problem.get("type", ""))
        else:
            test = TestOutcome("", case.get("name"), "skipped" if case.find("skipped") is not None else "passed")
        results[kata_id].add(test)
    return results
