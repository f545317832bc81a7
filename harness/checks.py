"""Checks that the suites are worth having (run by .ci/run, upstream only):

- check_stubs: every file in katas/ is the untouched stub of its reference, and against
  the stubs every kata's suite fails (at least one failure, not one pass), saying
  "not implemented yet";
- check_mutants: every mutant (tests/mutants/<kata>.toml, the reference with one mistake
  put in) fails its kata's suite.
"""
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import manifest
from harness.manifest import Kata
from harness.results import NOT_IMPLEMENTED
from harness.runner import run_katas
from harness.stubs import is_untouched

MUTANTS = manifest.ROOT / "tests" / "mutants"
MIN_MUTANTS_PER_KATA = 3


def check_stubs() -> list[str]:
    """Problems with the shipped stubs; empty when all is well."""
    problems = []
    for kata in manifest.katas():
        if not is_untouched(kata):
            problems.append(f"{kata.relative(kata.file)} is not the stub of its reference "
                            f"(regenerate: python -m harness stub {kata.id} > {kata.relative(kata.file)})")
    for kata_id, result in run_katas(list(manifest.katas())).items():
        if result.passed:
            problems.append(f"{kata_id}: {result.passed} test(s) pass on the untouched stub")
        if not result.failed:
            problems.append(f"{kata_id}: no test fails on the untouched stub")
        for test in result.tests:
            if test.outcome == "failed" and (test.kind != "not_implemented" or NOT_IMPLEMENTED not in test.message):
                problems.append(f"{kata_id}: a stub failure is not 'not implemented yet' ({test.kind}): {test.message[:200]}")
    return problems


@dataclass(frozen=True)
class Mutant:
    kata: Kata
    name: str
    mistake: str
    edits: tuple[tuple[str, str], ...]

    def source(self) -> str:
        text = self.kata.reference_file.read_text(encoding="utf-8")
        for old, new in self.edits:
            if text.count(old) != 1:
                raise ValueError(f"mutant {self.kata.id}/{self.name}: {old!r} occurs {text.count(old)} times in the reference")
            text = text.replace(old, new)
        return text


def mutants_of(kata: Kata) -> list[Mutant]:
    path = MUTANTS / f"{kata.id}.toml"
    if not path.exists():
        return []
    entries = manifest.read_toml(path).get("mutant", [])
    return [
        Mutant(
            kata=kata,
            name=entry["name"],
            mistake=entry["mistake"],
            edits=tuple((edit["replace"], edit["with"]) for edit in entry.get("edits", [entry])),
        )
        for entry in entries
    ]


def run_mutant(mutant: Mutant, workdir: Path) -> tuple[Mutant, str, str]:
    """Run the kata's suite against the mutant: ("caught", first failing test) or ("survived", "")."""
    folder = workdir / mutant.kata.id / mutant.name
    folder.mkdir(parents=True)
    path = folder / f"{mutant.kata.name}.py"
    path.write_text(mutant.source(), encoding="utf-8")
    command = [sys.executable, "-m", "pytest", mutant.kata.relative(mutant.kata.test_file), "-x", "-q",
               "-p", "no:cacheprovider", "--no-header", "-rN", "--reference", f"--swap={mutant.kata.id}={path}"]
    done = subprocess.run(command, cwd=manifest.ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "CI": "1"})
    if done.returncode == 0:
        return mutant, "survived", ""
    if done.returncode == 1:
        failed = [line for line in done.stdout.splitlines() if line.startswith("_") and line.endswith("_")]
        return mutant, "caught", failed[0].strip("_ ") if failed else "?"
    return mutant, "error", done.stdout[-2000:] + done.stderr[-2000:]


def check_mutants(kata_ids: "list[str] | None" = None, jobs: int = 2, report=print) -> list[str]:
    katas = [manifest.get(kata_id) for kata_id in kata_ids] if kata_ids else list(manifest.katas())
    problems = [f"{kata.id}: {len(mutants_of(kata))} mutants, at least {MIN_MUTANTS_PER_KATA} wanted"
                for kata in katas if len(mutants_of(kata)) < MIN_MUTANTS_PER_KATA]
    everything = [mutant for kata in katas for mutant in mutants_of(kata)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=jobs) as pool:
        for mutant, verdict, detail in pool.map(lambda m: run_mutant(m, Path(tmp)), everything):
            report(f"{verdict:>8}  {mutant.kata.id}/{mutant.name}  {detail.splitlines()[0] if verdict == 'caught' and detail else ''}")
            if verdict != "caught":
                problems.append(f"mutant {mutant.kata.id}/{mutant.name} ({mutant.mistake}) {verdict}" +
                                (f":\n{detail}" if detail else ""))
    report(f"{len(everything)} mutants over {len(katas)} katas, {len(problems)} problem(s)")
    return problems
