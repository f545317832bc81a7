"""Learner checkouts for the grader's tests (tests/test_grade.py, tests/test_attacks.py).

A checkout is what `kata grade --learner DIR` reads: the shipped stub of every kata, with
some kata files replaced.
"""
from pathlib import Path

from harness import manifest


def learner_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A fork's checkout: the shipped stubs, with some kata files replaced."""
    learner = tmp_path / "fork"
    for each in manifest.katas():
        target = learner / each.relative(each.file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files.get(each.id) or _stub(each))
    return learner


def _stub(each) -> str:
    from harness.authoring.stubs import stub_source

    return stub_source(each.reference_file, each.symbol)


def reference_of(kata_ids) -> dict[str, str]:
    return {kata_id: manifest.get(kata_id).reference_file.read_text() for kata_id in kata_ids}
