"""Progress: every kata's verdict (run through the one runner, or kept from the verdict cache),
the next kata to do, and how `kata`, `kata next`, `kata watch` and `kata demo` show them."""
import os
import sys
from pathlib import Path

from rich.console import Console

from harness import manifest
from harness.authoring.stubs import is_untouched  # an untouched stub: every test would say "not implemented yet"
from harness.failures import FailureKind
from harness.manifest import Kata

console = Console(highlight=False, soft_wrap=True)
STYLES = {"done": "green", "failing": "red", "not started": "dim", "broken": "magenta", "no tests": "yellow"}
UNTOUCHED = "not implemented yet: still the untouched stub (its tests were not run)"


def collect(katas: list[Kata], *, reference: bool = False, quiet: bool = False, fresh: bool = False) -> dict:
    """Run the suites of `katas` (an untouched stub's suite is not run: it cannot pass). A kata
    whose file and grading files are unchanged since its last run keeps its verdict (harness.run.verdict_cache)."""
    from harness.run import verdict_cache
    from harness.run.results import KataResult, TestOutcome
    from harness.run.runner import run_katas

    results = {}
    to_run = []
    sources = {kata.id: kata.source("reference" if reference else "katas") for kata in katas}
    for kata in katas:
        if not reference and is_untouched(kata):
            results[kata.id] = KataResult(kata)
            results[kata.id].add(TestOutcome(kata.relative(kata.test_file), "(untouched stub)", "failed", UNTOUCHED,
                                             kind=FailureKind.NOT_IMPLEMENTED))
        elif not fresh and (cached := verdict_cache.load(kata, sources[kata.id])) is not None:
            results[kata.id] = cached
        else:
            to_run.append(kata)
    if to_run:
        extra = ["--reference"] if reference else []
        if quiet or not console.is_terminal:
            ran = run_katas(to_run, *extra, warm=True)
        else:
            ran = _run_with_progress_bar(to_run, extra)
        verdict_cache.store(ran, sources)
        results.update(ran)
    return {kata.id: results[kata.id] for kata in katas}


def _run_with_progress_bar(katas: list[Kata], extra: list[str]) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.run.runner import run_katas

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"Running the tests of {len(katas)} katas", total=None)

        def update(finished: int, total: int, kata: "Kata | None") -> None:
            bar.update(task, completed=finished, total=total or None,
                       description=f"Testing {kata.title}" if kata else "Collecting tests")

        return run_katas(katas, *extra, progress=update, warm=True)


def next_kata(results: dict) -> "Kata | None":
    return next((kata for kata in manifest.katas() if kata.id in results and results[kata.id].status != "done"), None)


def status_json(results: dict) -> dict:
    upcoming = next_kata(results)
    return {
        "done": sum(result.status == "done" for result in results.values()),
        "total": len(results),
        "points": sum(result.kata.points for result in results.values() if result.status == "done"),
        "max_points": sum(result.kata.points for result in results.values()),
        "katas": [
            {"id": result.kata.id, "title": result.kata.title, "file": result.kata.relative(result.kata.file),
             "status": result.status, "passed": result.passed, "failed": result.failed, "skipped": result.skipped,
             "points": result.kata.points, "first_failure": result.first_failure, "limits": result.protections}
            for result in results.values()
        ],
        "next": None if upcoming is None else {
            "id": upcoming.id, "title": upcoming.title, "file": upcoming.relative(upcoming.file),
            "run": f"pytest {upcoming.relative(upcoming.test_file)}", "hint": f"kata hint {upcoming.id}",
        },
    }


def print_next(results: dict) -> None:
    upcoming = next_kata(results)
    if upcoming is None:
        whole = len(results) == len(manifest.katas())
        console.print("Every kata is done: you have built GPT-2. Try: kata demo" if whole else "All of these are done.")
        return
    if not os.environ.get("VIRTUAL_ENV") and Path(sys.prefix).name == ".venv":
        console.print("(First, in your shell: . .venv/bin/activate)")
    console.print(
        f"Next: [bold]{upcoming.title}[/] ({upcoming.id})\n"
        f"  open  {upcoming.relative(upcoming.file)}\n"
        f"  run   pytest {upcoming.relative(upcoming.test_file)}\n"
        f"  hint  kata hint {upcoming.id}"
    )
