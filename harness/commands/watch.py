"""`kata watch`: reruns the current kata's tests whenever a file under katas/ is saved.

The current kata is the first one not done. Each run clears the screen and shows the verdict: the
failure, whole, or a "done" banner and the next kata, whose tests then run at once. A save to a
kata that was done reruns that kata first: a regression is shown before anything else, and that
kata is the current one until it passes again.
Runs are warm (harness.run.runner's fork server: torch, Hypothesis and pytest are imported once). In a
terminal, keys work while it waits: h shows the next hint, q quits; when stdin is not a terminal
there are no keys (Ctrl-C stops it). File events come from watchfiles; where none arrive (some
network or container file systems) the files' modification times are compared every --interval
seconds as well. A save made while the tests run starts the next run as soon as they end.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from harness import manifest
from harness.failures import FailureKind
from harness.manifest import Kata
from harness.untrusted import Sink, shown

KEY_POLL = 0.1  # seconds between looks at the keyboard while waiting for a save


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll", action="store_true", help="only compare modification times (no file events)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default %(default)s)")


class Keys:
    """Single key presses from the terminal, read without blocking (cbreak mode while in use); none
    when stdin is not a terminal or the system has no termios (Windows)."""

    def __init__(self, stream=None):
        self.stream = sys.stdin if stream is None else stream
        self.active = False
        self._saved = None

    def __enter__(self) -> "Keys":
        try:
            import termios
            import tty

            if self.stream is not None and self.stream.isatty():
                self.fd = self.stream.fileno()
                self._saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
                self.active = True
        except (ImportError, OSError, ValueError, AttributeError):
            self.active = False
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        self.active = False

    def read(self) -> "str | None":
        """The key pressed since the last look, or None."""
        if not self.active:
            return None
        import select

        if not select.select([self.fd], [], [], 0)[0]:
            return None
        return os.read(self.fd, 1).decode(errors="replace").lower() or None


def snapshot(folder: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in folder.rglob("*.py") if "__pycache__" not in path.parts}


def wait_for_change(folder: Path, *, poll: bool = False, interval: float = 1.0, since: "dict | None" = None,
                    keys: "Keys | None" = None, wanted: str = "") -> "str | None":
    """Return None once a .py file under `folder` is saved (created, changed or deleted) after the
    snapshot `since` (taken before the last run, so that a save made during it is not lost), or a
    key of `wanted` pressed meanwhile."""
    before = snapshot(folder) if since is None else since
    if snapshot(folder) != before:
        return None
    listening = keys is not None and keys.active and wanted
    step = min(interval, KEY_POLL) if listening else interval
    events = None
    if not poll:
        try:
            from watchfiles import watch

            events = watch(folder, rust_timeout=max(1, int(step * 1000)), yield_on_timeout=True,
                           watch_filter=lambda change, path: path.endswith(".py"))
        except ImportError:
            events = None
    last_snapshot = time.monotonic()
    try:
        while True:
            if events is not None:
                if next(events):  # a file event, or an empty set after `step` without one
                    return None
            else:
                time.sleep(step)
            if listening and (key := keys.read()) and key in wanted:
                return key
            if time.monotonic() - last_snapshot >= interval or not listening:
                last_snapshot = time.monotonic()
                if snapshot(folder) != before:
                    return None
    finally:
        if events is not None:
            events.close()


def run_tests(kata: Kata):
    """Run the kata's suite (through the one runner, warm, stopping at the first failure); show the
    first failure in short form. Returns the KataResult."""
    from harness.commands.status import UNTOUCHED, console, is_untouched
    from harness.run.results import KataResult, TestOutcome
    from harness.run.runner import run_katas

    if is_untouched(kata):  # its suite cannot pass: not run, the verdict is at once
        result = KataResult(kata)
        result.add(TestOutcome(kata.relative(kata.test_file), "(untouched stub)", "failed", UNTOUCHED, kind=FailureKind.NOT_IMPLEMENTED))
    elif console.is_terminal:
        with console.status(f"Testing {kata.title}..."):
            result = run_katas([kata], "-x", warm=True)[kata.id]
    else:
        result = run_katas([kata], "-x", warm=True)[kata.id]
    if result.status == "done":
        return result
    failures = [test for test in result.tests if test.outcome == "failed"]
    if result.status == "not started":
        console.print(f"[yellow]Not started[/]: replace `raise NotImplementedError` in {kata.relative(kata.file)}")
        return result
    console.print(f"[red]{result.status}[/]: {result.passed} passed, {len(failures)} failed (stopped at the first failure)")
    if failures:  # the verdict `kata` and the reports show, whole
        name, _, rest = result.verdict.partition(": ")
        console.print(f"\n[bold]{shown(name, Sink.TERMINAL)}[/]")
        console.print(shown(rest, Sink.TEXT), markup=False, highlight=False)
    return result


def changed_katas(before: dict, order: list, current: Kata) -> list:
    """The katas before `current` in learning order whose file was saved since `before`: done then."""
    now = snapshot(manifest.ROOT / "katas")
    return [kata for kata in order[:order.index(current)] if before.get(str(kata.file)) != now.get(str(kata.file))]


def _regression(katas: list, console) -> "Kata | None":
    """Rerun the katas that were done and were saved again; the first that fails now is the current kata."""
    from harness.run.runner import run_katas

    for kata in katas:
        result = run_katas([kata], "-x", warm=True)[kata.id]
        if result.status != "done":
            console.print(f"[bold red]Regression[/]: {kata.title} was done and fails now ({kata.relative(kata.file)}).")
            return kata
    return None


def _show_hint(kata: Kata, level: int) -> None:
    from harness.commands.status import console

    if not kata.hints:
        console.print("(this kata has no hints)")
        return
    level = min(level, len(kata.hints))
    console.print(f"[cyan]hint {level}/{len(kata.hints)}[/]: {kata.hints[level - 1]}")


def run(args: argparse.Namespace) -> int:
    from harness.commands.status import collect, console, next_kata
    from harness.run import runner

    runner.start_fork_server()  # it imports torch and the rest while the verdicts are gathered
    with console.status("Finding the first kata that is not done..."):
        kata = next_kata(collect(list(manifest.katas()), quiet=True))
    order = list(manifest.katas())
    clear = True
    try:
        with Keys() as keys:
            while kata is not None:
                before_run = snapshot(manifest.ROOT / "katas")  # a save during the run triggers the next one
                if clear and console.is_terminal:
                    console.clear()
                clear = True
                console.rule(f"{order.index(kata) + 1}/{len(order)}  {kata.title} ({kata.relative(kata.file)})")
                result = run_tests(kata)
                if result.status == "done":
                    later = [each for each in order[order.index(kata) + 1:]]
                    upcoming = later[0] if later else None
                    console.print(f"\n[bold green]✔ {kata.title}: done[/] ({result.passed} tests passed)")
                    if upcoming is not None:
                        console.print(f"Next: [bold]{upcoming.title}[/]: open {upcoming.relative(upcoming.file)}\n")
                    kata, clear = upcoming, False  # the banner stays on screen above the next kata's verdict
                    continue
                keys_help = "h: hint, q: quit" if keys.active else f"hint: kata hint {kata.id}; Ctrl-C to stop"
                console.print(f"\nWatching katas/ (save to rerun; {keys_help})")
                level = 0
                while (key := wait_for_change(manifest.ROOT / "katas", poll=args.poll, interval=args.interval,
                                              since=before_run, keys=keys, wanted="hq")) is not None:
                    if key == "q":
                        return 0
                    level += 1
                    _show_hint(kata, level)
                regressed = _regression(changed_katas(before_run, order, kata), console)
                if regressed is not None:
                    kata, clear = regressed, False  # the regression's line stays above its verdict
    except KeyboardInterrupt:
        return 0
    console.print("[bold green]Every kata is done: you have built GPT-2.[/] Try: kata demo")
    return 0
