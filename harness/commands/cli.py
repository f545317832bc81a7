"""kata: your progress, the next kata, hints, grading, and more (`python -m harness` too).

    kata                  run every kata's tests on your code: what is done, what is next
    kata next             only the next kata: the file to open, the command to run
    kata hint KATA        a kata's hints, one level at a time (--level N)
    kata solution KATA    once it passes: the reference beside your code, and why the kata matters
    kata watch            rerun the current kata's tests whenever you save a file under katas/
    kata demo             generate text with a GPT-2 built from your finished katas (--pretrained gpt2: real weights)
    kata explore          look inside it: attention patterns and next-token predictions as a web page
                          (--serve: live, with generation; --png DIR: images)
    kata train            train a small GPT-2 on text, with the reference or your katas (--mine);
                          on one process or many under torchrun
    kata grade --out DIR  grade every kata and write reports for Exercism, GitHub Classroom,
                          Gradescope and JUnit (what CI runs on a fork)

Instructors: stub KATA, check-stubs, check-mutants [KATA...], hashes.
"""
import argparse
import importlib
import importlib.util
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import manifest
from harness.commands.status import STYLES, collect, console, next_kata, print_next, status_json
from harness.manifest import Kata
from harness.untrusted import Sink, shown


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    aliases: tuple[str, ...] = ()


# ---------------------------------------------------------------- status, next, hint

def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON, for scripts")
    parser.add_argument("--reference", action="store_true", help="check the reference solutions instead of katas/")
    parser.add_argument("--kata", action="append", metavar="KATA", help="only this kata (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="run every started kata's tests, even those whose files did not change")


def _katas(args: argparse.Namespace) -> list[Kata]:
    return [manifest.find(kata_id) for kata_id in args.kata] if getattr(args, "kata", None) else list(manifest.katas())


def status(args: argparse.Namespace) -> int:
    results = collect(_katas(args), reference=args.reference, quiet=args.json, fresh=args.fresh)
    if args.json:
        print(json.dumps(status_json(results), indent=1))
        return 0
    numbers = {kata.id: number for number, kata in enumerate(manifest.katas(), start=1)}
    for kata_id, result in results.items():
        console.print(f"{numbers[kata_id]:>3}  [{STYLES[result.status]}]{result.status:<11}[/] {result.kata.title}")
        if result.status in ("failing", "broken"):  # its most telling failure, whole, under it
            console.print(textwrap.indent(shown(result.verdict, Sink.TEXT), "     "), markup=False, highlight=False)
    done = sum(result.status == "done" for result in results.values())
    console.print(f"\n{done} of {len(results)} katas done.\n")
    print_next(results)
    return 0


def next_command(args: argparse.Namespace) -> int:
    print_next(collect(list(manifest.katas()), quiet=True))
    return 0


def _configure_hint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kata", nargs="?", metavar="KATA",
                        help="its id, number, name or file (attention.causal_mask, 5, causal_mask, katas/attention/causal_mask.py); "
                        "default: the next kata to do")
    parser.add_argument("--level", type=int, default=1, help="how many hints to show (1 = the gentlest)")


def hint(args: argparse.Namespace) -> int:
    if args.kata is None:
        kata = next_kata(collect(list(manifest.katas()), quiet=True))
        if kata is None:
            console.print("Every kata is done: no hint needed.")
            return 0
    else:
        try:
            kata = manifest.find(args.kata)
        except KeyError as error:
            console.print(f"[red]{error.args[0]}[/]")
            return 2
    level = max(1, min(args.level, len(kata.hints)))
    console.print(f"[bold]{kata.title}[/] ({kata.relative(kata.file)})")
    for number, text in enumerate(kata.hints[:level], start=1):
        console.print(f"  hint {number}/{len(kata.hints)}: {text}")
    if level < len(kata.hints):
        console.print(f"  More: kata hint {kata.id} --level {level + 1}")
    return 0


def _configure_solution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kata", metavar="KATA", nargs="?",
                        help="its id, number, name or file (attention.causal_mask, 5, causal_mask, ...); default: the last kata done")
    parser.add_argument("--fresh", action="store_true", help="run its tests again, even if its file did not change")


SIDE_BY_SIDE_WIDTH = 120  # columns from which the two files are shown side by side


def solution(args: argparse.Namespace) -> int:
    """The reference beside the learner's code, and why the kata matters: only once it passes."""
    if args.kata is None:  # the last kata done, in learning order: what the learner just finished
        results = collect(list(manifest.katas()), quiet=True)
        done = [kata for kata in manifest.katas() if results[kata.id].status == "done"]
        if not done:
            console.print("No kata is done yet: `kata solution` shows a kata's reference once its tests pass. `kata next` says where to start.")
            return 1
        args.kata = done[-1].id
    try:
        kata = manifest.find(args.kata)
    except KeyError as error:
        console.print(f"[red]{error.args[0]}[/]")
        return 2
    result = collect([kata], quiet=True, fresh=args.fresh)[kata.id]
    if result.status != "done":
        detail = f": {result.first_failure}" if result.first_failure else ""
        console.print(f"[yellow]{kata.title} is {result.status}{detail}[/]\n"
                      f"The solution is shown once its tests pass: pytest {kata.relative(kata.test_file)}  (stuck? kata hint {kata.id})")
        return 1
    from rich.columns import Columns
    from rich.panel import Panel
    from rich.syntax import Syntax

    console.print(f"[bold green]{kata.title}: done[/] ({result.passed} tests passed)")
    if kata.why:
        console.print(f"\n[bold]Why it matters[/]: {kata.why}\n")
    panels = [Panel(Syntax(path.read_text(encoding="utf-8"), "python", line_numbers=True, word_wrap=True), title=title, expand=True)
              for title, path in ((f"yours: {kata.relative(kata.file)}", kata.file),
                                  (f"reference: {kata.relative(kata.reference_file)}", kata.reference_file))]
    if console.is_terminal and console.width >= SIDE_BY_SIDE_WIDTH:
        console.print(Columns(panels, equal=True, expand=True))
    else:
        for panel in panels:
            console.print(panel)
    return 0


# ---------------------------------------------------------------- grade, hashes

def _configure_grade(parser: argparse.ArgumentParser) -> None:
    from harness.run.runner import DEFAULT_KATA_BUDGET, DEFAULT_MEMORY_GIB, DEFAULT_TEST_TIMEOUT

    parser.add_argument("--out", type=Path, default=Path("reports"), help="where the reports go (default: reports/)")
    parser.add_argument("--learner", type=Path, default=manifest.ROOT,
                        help="the checkout whose katas/ files are graded (default: this one); nothing else of it is used")
    parser.add_argument("--kata", action="append", metavar="KATA", help="grade only this kata (repeatable)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TEST_TIMEOUT, help="seconds per test (default %(default)s)")
    parser.add_argument("--memory-limit", type=float, default=DEFAULT_MEMORY_GIB, help="GiB of address space for the tests")
    parser.add_argument("--kata-budget", type=float, default=DEFAULT_KATA_BUDGET,
                        help="seconds for all of one kata's tests; past it the kata's processes are killed (default %(default)s)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole grade; past it every process is killed and the katas not reached fail")
    parser.add_argument("--uncontained", action="store_true",
                        help="grade even where the learner's code cannot be walled in by namespaces (the grade can be forged)")


def grade_command(args: argparse.Namespace) -> int:
    from harness.grading.grade import NOT_CONTAINED, ReportError, grade, write_reports
    from harness.run.runner import Limits

    limits = Limits(test_timeout=args.timeout, memory_gib=args.memory_limit, kata_budget=args.kata_budget, budget=args.budget)
    kata_ids = [manifest.find(name).id for name in args.kata] if args.kata else None  # any name a kata goes by
    result = grade(args.learner, kata_ids, limits, out=args.out, progress=_grading_progress(kata_ids))
    if not result.contained:  # the first line printed: a grade anyone could have forged must not pass for one
        console.print(f"[red]{NOT_CONTAINED}[/] ({shown(result.containment, Sink.TERMINAL)})")
    if result.error:
        console.print("[red]Not graded[/]: the grading files differ from the grader's commit:\n  " +
                      "\n  ".join(shown(problem, Sink.TERMINAL) for problem in result.problems))
    try:
        files, failure = write_reports(result, args.out), None
    except ReportError as error:
        files, failure = [], error
    score = f"Score: {result.score}/{result.max_score} points, {result.done} of {len(result.katas)} katas done ({result.seconds:.0f} s)."
    if failure is not None:  # the score line is always printed; a grade without its reports is a grader error
        console.print(f"{score} [red]Grader error[/]: {shown(failure, Sink.TERMINAL)}")
        return 1
    console.print(f"{score} Reports: " + ", ".join(shown(path, Sink.TERMINAL) for path in files))
    if not result.contained and not args.uncontained:
        console.print("Exit code 3: not contained. Grade as root, or where unprivileged user namespaces are allowed "
                      "(docs/instructors.md); --uncontained accepts it.")
        return 3
    return 0


def _grading_progress(kata_ids: "list[str] | None"):
    """A line on stderr as each kata's grading starts (stdout keeps the verdict lines and the score)."""
    from rich.console import Console

    errors = Console(stderr=True, highlight=False)
    total = len(kata_ids) if kata_ids else len(list(manifest.katas()))
    numbers = {kata.id: number for number, kata in enumerate(manifest.katas(), start=1)}
    started: list[str] = []

    def progress(finished: int, tests: int, kata) -> None:
        if kata is not None and kata.id not in started:
            started.append(kata.id)
            errors.print(f"grading {len(started)}/{total}: #{numbers.get(kata.id, '?')} {kata.title} ({finished} of {tests} tests run)")
    return progress


def hashes(args: argparse.Namespace) -> int:
    """The grading files' sha256 and whether they are as committed: compare two graders with it."""
    from harness.grading import integrity

    sys.stdout.write(integrity.format_hashes(integrity.current_hashes()))
    for problem in integrity.problems():
        print(f"# {problem}", file=sys.stderr)
    print(f"# grader: {integrity.fingerprint()}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- instructors' commands

def _configure_kata_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kata", metavar="KATA", help="its id, number, name or file (attention.causal_mask, 5, causal_mask, ...)")


def stub(args: argparse.Namespace) -> int:
    from harness.authoring.stubs import stub_source

    kata = manifest.find(args.kata)
    sys.stdout.write(stub_source(kata.reference_file, kata.symbol))
    return 0


def _configure_modes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=["in-process", "isolated", "both"], default="both",
                        help="run the learner's code in the test process, in a worker process of its own, or both (default)")


def _modes(args: argparse.Namespace) -> tuple:
    return ("in-process", "isolated") if args.mode == "both" else (args.mode,)


def check_stubs(args: argparse.Namespace) -> int:
    from harness.authoring.checks import check_stubs as run

    problems = run(_modes(args))
    for problem in problems:
        console.print(f"[red]problem[/] {problem}")
    console.print(f"stubs: {len(manifest.katas())} katas checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def _configure_check_mutants(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("katas", nargs="*", metavar="KATA")
    parser.add_argument("--jobs", type=int, default=2)
    _configure_modes(parser)


def check_mutants(args: argparse.Namespace) -> int:
    from harness.authoring.checks import check_mutants as run

    problems = run(args.katas or None, jobs=args.jobs, report=lambda line: console.print(line, markup=False), modes=_modes(args))
    for problem in problems:
        console.print(f"[red]problem[/] {problem}")
    return 1 if problems else 0


def _lazy(module: str, attribute: str):
    """A command that lives in another module, imported only when it runs."""
    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), attribute)(args)
    return run


def _configure_from(module: str):
    def configure(parser: argparse.ArgumentParser) -> None:
        importlib.import_module(module).configure_parser(parser)
    return configure


def _nothing(parser: argparse.ArgumentParser) -> None:
    pass


def _module_command(name: str) -> tuple:
    """A command that lives in harness/commands/<name>.py: its parser and its run, imported when used."""
    return _configure_from(f"harness.commands.{name}"), _lazy(f"harness.commands.{name}", "run")


# Every subcommand, in the order `kata --help` lists them. A module of the harness that offers
# configure_parser(parser) and run(args) -> int joins with one line here.
COMMANDS = [
    Command("status", "what is done, and what is next (the default)", _configure_status, status, aliases=("progress",)),
    Command("next", "only the next kata: the file, the command, the hint", _nothing, next_command),
    Command("hint", "a kata's hints, one level at a time", _configure_hint, hint),
    Command("solution", "once a kata passes: the reference beside your code, and why it matters", _configure_solution, solution),
    Command("watch", "rerun the current kata's tests on every save", *_module_command("watch")),
    Command("demo", "generate text with a GPT-2 built from your katas", *_module_command("demo")),
    Command("explore", "see inside your GPT-2: attention heatmaps and predictions in an offline web page", *_module_command("explore")),
    Command("grade", "grade every kata and write reports (CI)", _configure_grade, grade_command),
    Command("hashes", "the grading files' sha256, and the grader's commit", _nothing, hashes),
    Command("stub", "print a kata's stub, made from its reference", _configure_kata_arg, stub),
    Command("check-stubs", "stubs untouched and failing every suite (CI)", _configure_modes, check_stubs),
    Command("check-mutants", "every mutant fails its suite (CI)", _configure_check_mutants, check_mutants),
    Command("train", "train a small GPT-2 on text (one process, or many under torchrun)", *_module_command("train")),
]


def parser(prog: str = "kata", selected: "str | None" = None) -> argparse.ArgumentParser:
    """Every subcommand; only `selected`'s options are set up (others may import torch: slow)."""
    top = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, aliases=list(command.aliases))
        if selected is None or selected in (command.name, *command.aliases):
            command.configure(sub)
        sub.set_defaults(run=command.run)
    return top


def main(argv: "list[str] | None" = None, prog: str = "kata") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "status")
    try:
        args = parser(prog, selected=argv[0]).parse_args(argv)
        return args.run(args)
    except (manifest.NotACheckout, manifest.UnknownKata) as error:
        console.print(f"[red]{prog}[/]: {error}", markup=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
