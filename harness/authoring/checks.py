"""Checks that the suites are worth having (run by .ci/run, upstream only):

- check_stubs: every file in katas/ is the untouched stub of its reference, and against
  the stubs every kata's suite fails (at least one failure, not one pass), saying
  "not implemented yet";
- check_mutants: every mutant (tests/mutants/<kata>.toml, the reference with one mistake
  put in) fails its kata's suite.

Both run the suites through harness.run.runner, in process and isolated (the learner's code in a
worker process, as `kata grade` runs it): the verdicts must not depend on the way.
"""
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import manifest
from harness.authoring.stubs import is_untouched
from harness.failures import FailureKind
from harness.manifest import Kata
from harness.run.results import NOT_IMPLEMENTED
from harness.run.runner import Limits, run_katas, threads_side_by_side

MUTANTS = manifest.ROOT / "tests" / "mutants"
MIN_MUTANTS_PER_KATA = 3


MODES = {"in-process": False, "isolated": True}


def check_stubs(modes=tuple(MODES)) -> list[str]:
    """Problems with the shipped stubs; empty when all is well."""
    problems = []
    for kata in manifest.katas():
        if not is_untouched(kata):
            problems.append(f"{kata.relative(kata.file)} is not the stub of its reference "
                            f"(regenerate: python -m harness stub {kata.id} > {kata.relative(kata.file)})")
    for mode in modes:
        problems += _stub_problems(mode)
    return problems


def _stub_problems(mode: str) -> list[str]:
    problems = []
    for kata_id, result in run_katas(list(manifest.katas()), isolate=MODES[mode]).items():
        kata_id = f"{kata_id} ({mode})"
        if result.passed:
            problems.append(f"{kata_id}: {result.passed} test(s) pass on the untouched stub")
        if not result.failed:
            problems.append(f"{kata_id}: no test fails on the untouched stub")
        for test in result.tests:
            if test.outcome == "failed" and (test.kind != FailureKind.NOT_IMPLEMENTED or NOT_IMPLEMENTED not in test.message):
                problems.append(f"{kata_id}: a stub failure is not 'not implemented yet' ({test.kind}): {test.message[:200]}")
    return problems


@dataclass(frozen=True)
class Mutant:
    kata: Kata
    name: str
    mistake: str
    edits: tuple[tuple[str, str], ...]
    hint: str = ""  # words the kata's verdict must hold for this mistake (its diagnosis recognised it)

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
            hint=entry.get("hint", ""),
        )
        for entry in entries
    ]


def run_mutant(mutant: Mutant, workdir: Path, mode: str = "in-process", jobs: int = 1) -> tuple[Mutant, str, str]:
    """Run the kata's suite against the mutant: ("caught", first failing test), ("survived", "") or
    ("error", why) when no test could run."""
    folder = workdir / mode / mutant.kata.id / mutant.name
    folder.mkdir(parents=True)
    path = folder / f"{mutant.kata.name}.py"
    path.write_text(mutant.source(), encoding="utf-8")
    # A mutant with a hint runs every test: its verdict is the most telling of all its failures.
    stop_early = () if mutant.hint else ("-x",)
    for _ in range(2):  # a run in which no test reported (its process died starting up) is run once more
        result = run_katas([mutant.kata], *stop_early, "--reference", f"--swap={mutant.kata.id}={path}", isolate=MODES[mode],
                           # forked from one server that imported torch once: ~3 s less per mutant
                           limits=Limits(threads=threads_side_by_side(jobs)), warm=True)[mutant.kata.id]
        if result.tests:
            break
    else:
        return mutant, "error", "no test of the suite reported, twice: the mutant's verdict is unknown"
    failures = [test for test in result.tests if test.outcome == "failed"]
    if not failures:
        return mutant, "survived", ""
    if all(test.name == "(suite)" for test in failures):
        return mutant, "error", failures[0].message + "\n" + failures[0].output[-2000:]
    return mutant, "caught", result.verdict


def hint_problems(mutant: Mutant, verdict: str, mode: str) -> list[str]:
    """A hint fires on its mistake, and the hints of the kata's other mistakes do not."""
    found = []
    if mutant.hint and mutant.hint not in verdict:
        found.append(f"mutant {mutant.kata.id}/{mutant.name} ({mode}): its verdict lacks the hint {mutant.hint!r}:\n{verdict}")
    for other in mutants_of(mutant.kata):
        if other.hint and other.name != mutant.name and other.hint != mutant.hint and other.hint in verdict:
            found.append(f"mutant {mutant.kata.id}/{mutant.name} ({mode}): its verdict gives {other.name}'s hint {other.hint!r}")
    return found


def check_mutants(kata_ids: "list[str] | None" = None, jobs: int = 2, report=print, modes=tuple(MODES)) -> list[str]:
    katas = [manifest.find(kata_id) for kata_id in kata_ids] if kata_ids else list(manifest.katas())
    problems = [f"{kata.id}: {len(mutants_of(kata))} mutants, at least {MIN_MUTANTS_PER_KATA} wanted"
                for kata in katas if len(mutants_of(kata)) < MIN_MUTANTS_PER_KATA]
    everything = [(mutant, mode) for kata in katas for mutant in mutants_of(kata) for mode in modes]
    for mutant, _ in everything:
        mutant.source()  # a mutant whose text no longer matches the reference fails here, before minutes of runs
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=jobs) as pool:
        for (mutant, verdict, detail), (_, mode) in zip(pool.map(lambda each: run_mutant(each[0], Path(tmp), each[1], jobs), everything),
                                                        everything):
            shown = detail.splitlines()[0] if verdict == "caught" and detail else ""
            report(f"{verdict:>8}  {mutant.kata.id}/{mutant.name} ({mode})  {shown}")
            if verdict == "caught":
                problems += hint_problems(mutant, detail, mode)
            else:
                problems.append(f"mutant {mutant.kata.id}/{mutant.name} ({mutant.mistake}) {verdict} ({mode})" +
                                (f":\n{detail}" if detail else ""))
    report(f"{len(everything)} mutant runs ({len(everything) // max(1, len(modes))} mutants, {' and '.join(modes)}) over "
           f"{len(katas)} katas, {len(problems)} problem(s)")
    return problems
