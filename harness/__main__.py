"""python -m harness COMMAND: the learner's progress and hints, and the instructor's checks.

    progress             run every kata's suite against katas/ and show what is done, and what is next
    hint KATA [--level N] the hints of a kata, one level at a time
    stub KATA            print a kata's stub, made from its reference
    check-stubs          the shipped stubs are untouched and fail every suite (CI)
    check-mutants [KATA...] every known-wrong solution fails its suite (CI)
    train [OPTIONS]      train a small GPT-2 on text (also under torchrun); see harness/train.py
"""
import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import manifest

console = Console(highlight=False, soft_wrap=True)
STYLES = {"done": "green", "failing": "red", "not started": "dim", "broken": "magenta", "no tests": "yellow"}


def progress(args: argparse.Namespace) -> int:
    from harness.results import run_suites

    with console.status("Running every kata's tests..."):
        results = run_suites([], *(["--reference"] if args.reference else []))
    table = Table(title="Transformer Katas: your progress", title_justify="left")
    for column in ("#", "kata", "status", "first failure"):
        table.add_column(column, overflow="fold")
    for number, kata in enumerate(manifest.katas(), start=1):
        result = results[kata.id]
        detail = "" if result.status in ("done", "not started") else result.first_failure[:100]
        table.add_row(str(number), kata.title, f"[{STYLES[result.status]}]{result.status}[/]", detail)
    console.print(table)
    done = sum(result.status == "done" for result in results.values())
    console.print(f"{done} of {len(results)} katas done.")
    upcoming = next((kata for kata in manifest.katas() if results[kata.id].status != "done"), None)
    if upcoming is None:
        console.print("Every kata is done: you have built GPT-2.")
        return 0
    if not os.environ.get("VIRTUAL_ENV") and Path(sys.prefix).name == ".venv":
        console.print("\n(First, in your shell: . .venv/bin/activate)")
    console.print(
        f"\nNext: [bold]{upcoming.title}[/] ({upcoming.id})\n"
        f"  open  {upcoming.relative(upcoming.file)}\n"
        f"  run   pytest {upcoming.relative(upcoming.test_file)}\n"
        f"  hint  python -m harness hint {upcoming.id}"
    )
    return 0


def hint(args: argparse.Namespace) -> int:
    kata = manifest.get(args.kata)
    level = max(1, min(args.level, len(kata.hints)))
    console.print(f"[bold]{kata.title}[/] ({kata.relative(kata.file)})")
    for number, text in enumerate(kata.hints[:level], start=1):
        console.print(f"  hint {number}/{len(kata.hints)}: {text}")
    if level < len(kata.hints):
        console.print(f"  More: python -m harness hint {kata.id} --level {level + 1}")
    return 0


def stub(args: argparse.Namespace) -> int:
    from harness.stubs import stub_source

    kata = manifest.get(args.kata)
    sys.stdout.write(stub_source(kata.reference_file, kata.symbol))
    return 0


def check_stubs(args: argparse.Namespace) -> int:
    from harness.checks import check_stubs as run

    problems = run()
    for problem in problems:
        console.print(f"[red]problem[/] {problem}")
    console.print(f"stubs: {len(manifest.katas())} katas checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def check_mutants(args: argparse.Namespace) -> int:
    from harness.checks import check_mutants as run

    problems = run(args.katas or None, jobs=args.jobs, report=lambda line: console.print(line, markup=False))
    for problem in problems:
        console.print(f"[red]problem[/] {problem}")
    return 1 if problems else 0


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("progress", help="what is done, and what is next")
    command.add_argument("--reference", action="store_true", help="grade the reference instead of katas/")
    command.set_defaults(run=progress)
    command = commands.add_parser("hint", help="a kata's hints, one level at a time")
    command.add_argument("kata", choices=[kata.id for kata in manifest.katas()], metavar="KATA")
    command.add_argument("--level", type=int, default=1)
    command.set_defaults(run=hint)
    command = commands.add_parser("stub", help="print a kata's stub, made from its reference")
    command.add_argument("kata", choices=[kata.id for kata in manifest.katas()], metavar="KATA")
    command.set_defaults(run=stub)
    commands.add_parser("check-stubs", help="stubs untouched and failing every suite").set_defaults(run=check_stubs)
    command = commands.add_parser("check-mutants", help="every mutant fails its suite")
    command.add_argument("katas", nargs="*", metavar="KATA")
    command.add_argument("--jobs", type=int, default=2)
    command.set_defaults(run=check_mutants)
    from harness import train

    command = commands.add_parser("train", help="train a small GPT-2 on text (one process, or many under torchrun)")
    train.configure_parser(command).set_defaults(run=train.run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
