"""Generated mutants: mutmut's mutation operators applied to the reference solutions, one at a time.

    python -m harness.authoring.mutation attention            # a folder, or one kata: attention.causal_mask
    python -m harness.authoring.mutation mlp --jobs 2 --list  # also print every survivor's diff

Each mutant is the reference with one of mutmut's mutations (an operator swapped, a number
changed, an argument dropped, ...), tested the way `kata check-mutants` tests the hand-written
ones: the kata's suite with `--swap KATA=MUTANT`, so the suite still compares against the
unmutated reference. Only the code a learner writes is mutated: a mutation that changes the
stub (a signature, a given __init__ or constant, a docstring) is not counted, nor one that leaves
the code the same once docstrings are set aside. Prints, per kata, killed/total and every survivor; a survivor is either a gap in
the suite or an equivalent mutant (tests/mutants/README.md says which ones are, and why).

Needs mutmut (`pip install -e ".[mutation]"`); not part of CI: it runs a suite per mutant.
"""
import argparse
import ast
import difflib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import manifest
from harness.authoring.stubs import stub_source
from harness.manifest import Kata
from harness.run.runner import Limits, run_katas, threads_side_by_side


@dataclass(frozen=True)
class Generated:
    kata: Kata
    number: int
    source: str

    def diff(self) -> str:
        original = self.kata.reference_file.read_text(encoding="utf-8").splitlines(keepends=True)
        lines = difflib.unified_diff(original, self.source.splitlines(keepends=True), n=0,
                                     fromfile=self.kata.relative(self.kata.reference_file), tofile=f"mutant {self.number}")
        return "".join(line for line in lines if not line.startswith(("---", "+++")))


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def generate(kata: Kata) -> list[Generated]:
    """mutmut's mutants of the code a learner writes in the kata (the reference minus its stub),
    each as a whole source file; no duplicates, none that differ only in a docstring."""
    from mutmut.mutation.file_mutation import create_mutations

    path = kata.reference_file
    code = path.read_text(encoding="utf-8")
    stub = stub_source(path, kata.symbol)
    module, mutations, _, _ = create_mutations(str(path), code)
    seen = {_without_docstrings(code)}
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for mutation in mutations:
            source = module.deep_replace(mutation.original_node, mutation.mutated_node).code
            try:
                shape = _without_docstrings(source)
            except SyntaxError:
                continue
            mutated = Path(folder) / path.name
            mutated.write_text(source, encoding="utf-8")
            if shape not in seen and stub_source(mutated, kata.symbol) == stub:
                seen.add(shape)
                found.append(Generated(kata, len(found) + 1, source))
    return found


def run(mutant: Generated, workdir: Path, jobs: int = 1) -> tuple[Generated, bool]:
    """Whether the kata's suite kills the mutant (a failing test, a crash, or a time-out)."""
    folder = workdir / mutant.kata.id / str(mutant.number)
    folder.mkdir(parents=True)
    path = folder / f"{mutant.kata.name}.py"
    path.write_text(mutant.source, encoding="utf-8")
    result = run_katas([mutant.kata], "-x", "-p", "no:cacheprovider", "--reference", f"--swap={mutant.kata.id}={path}",
                        limits=Limits(threads=threads_side_by_side(jobs)), warm=True)
    return mutant, any(test.outcome == "failed" for test in result[mutant.kata.id].tests)


def katas_named(names: list[str]) -> list[Kata]:
    katas = manifest.katas()
    chosen = [kata for kata in katas if any(kata.id == name or kata.folder == name for name in names)]
    unknown = [name for name in names if not any(kata.id == name or kata.folder == name for kata in katas)]
    if unknown:
        raise SystemExit(f"no kata or folder named {', '.join(unknown)}")
    return chosen


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.authoring.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", metavar="KATA_OR_FOLDER")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="print each survivor's diff")
    args = parser.parse_args(argv)
    start, killed_total, count_total = time.monotonic(), 0, 0
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(args.jobs) as pool:
        for kata in katas_named(args.names):
            mutants = generate(kata)
            outcomes = list(pool.map(lambda mutant: run(mutant, Path(workdir), args.jobs), mutants))
            survivors = [mutant for mutant, killed in outcomes if not killed]
            killed_total += len(mutants) - len(survivors)
            count_total += len(mutants)
            print(f"{kata.id}: {len(mutants) - len(survivors)}/{len(mutants)} killed", flush=True)
            for mutant in survivors:
                print(f"  survived: mutant {mutant.number}" + (f"\n{mutant.diff()}" if args.list else
                      f" {mutant.diff().splitlines()[-1].strip() if mutant.diff() else ''}"), flush=True)
    rate = 100 * killed_total / count_total if count_total else 100.0
    print(f"{killed_total}/{count_total} generated mutants killed ({rate:.1f}%) in {time.monotonic() - start:.0f} s")
    return 0 if killed_total == count_total else 1


if __name__ == "__main__":
    sys.exit(main())
