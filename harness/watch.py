"""`kata watch`: reruns the current kata's tests whenever a file under katas/ is saved.

The current kata is the first one not done. When its tests pass, the watch moves on to the
next. File events come from watchfiles; where none arrive (some network or container file
systems) the files' modification times are compared every --interval seconds as well.
"""
import argparse
import time
from pathlib import Path

from harness import manifest
from harness.manifest import Kata


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll", action="store_true", help="only compare modification times (no file events)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default %(default)s)")


def snapshot(folder: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in folder.rglob("*.py") if "__pycache__" not in path.parts}


def wait_for_change(folder: Path, *, poll: bool = False, interval: float = 1.0, since: "dict | None" = None) -> None:
    """Return once a .py file under `folder` is saved (created, changed or deleted) after the
    snapshot `since` (taken before the last run, so that a save made during it is not lost)."""
    before = snapshot(folder) if since is None else since
    if snapshot(folder) != before:
        return
    events = None
    if not poll:
        try:
            from watchfiles import watch

            events = watch(folder, rust_timeout=int(interval * 1000), yield_on_timeout=True,
                           watch_filter=lambda change, path: path.endswith(".py"))
        except ImportError:
            events = None
    try:
        while True:
            if events is not None:
                if next(events):  # a file event, or an empty set after `interval` without one
                    return
            else:
                time.sleep(interval)
            if snapshot(folder) != before:
                return
    finally:
        if events is not None:
            events.close()


def run_tests(kata: Kata) -> bool:
    """Run the kata's suite (through the one runner, stopping at the first failure) and show that failure."""
    from harness.cli import console
    from harness.runner import run_katas

    result = run_katas([kata], "-x")[kata.id]
    if result.status == "done":
        return True
    failures = [test for test in result.tests if test.outcome == "failed"]
    console.print(f"[red]{result.passed} passed, {len(failures)} failed[/] (stopped at the first failure)")
    if failures:
        console.print(f"[bold]{failures[0].name}[/]")
        console.print(failures[0].output or failures[0].message, markup=False, highlight=False)
    return False


def run(args: argparse.Namespace) -> int:
    from harness.cli import collect, console, next_kata

    with console.status("Finding the first kata that is not done..."):
        kata = next_kata(collect(list(manifest.katas()), quiet=True))
    try:
        while kata is not None:
            before_run = snapshot(manifest.ROOT / "katas")  # a save during the run triggers the next one
            if console.is_terminal:
                console.clear()
            console.rule(f"{kata.title} ({kata.relative(kata.file)})")
            if run_tests(kata):
                console.print(f"[green]{kata.title}: done.[/]")
                later = list(manifest.katas())[list(manifest.katas()).index(kata) + 1:]
                kata = later[0] if later else None
                continue
            console.print(f"Watching katas/ (save to rerun; hint: kata hint {kata.id}; Ctrl-C to stop)")
            wait_for_change(manifest.ROOT / "katas", poll=args.poll, interval=args.interval, since=before_run)
    except KeyboardInterrupt:
        return 0
    console.print("Every kata is done: you have built GPT-2. Try: kata demo")
    return 0
