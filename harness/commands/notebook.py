"""Checking a kata from a notebook (Jupyter, Colab), where the curriculum's learners work.

    from harness.commands.notebook import check
    check("causal_mask", apply_causal_mask)     # a function or class defined in a cell

runs the kata's whole suite on it, as `pytest katas/...` would on the kata's file, and shows the
verdict and the first failure. The cell's source is written to a file with the kata's imports
(those of its stub) above it; `source=` takes the code as text instead, for a class whose source
Python cannot find in a notebook (write the cell with %%writefile and pass its text).
"""
import ast
import inspect
import tempfile
import textwrap
from pathlib import Path

from harness import manifest
from harness.run.results import KataResult


def check(kata, solution=None, *, source: "str | None" = None, isolate: bool = False) -> KataResult:
    """Run the suite of `kata` (id, number, name or file) on `solution` or on `source`."""
    from harness.commands.status import console
    from harness.run.runner import run_katas

    found = manifest.find(str(kata))
    code = _code(found, solution, source)
    with tempfile.TemporaryDirectory(prefix="kata-notebook-") as folder:
        path = Path(folder) / f"{found.name}.py"
        path.write_text(code, encoding="utf-8")
        result = run_katas([found], f"--swap={found.id}={path}", isolate=isolate)[found.id]
    failures = [test for test in result.tests if test.outcome == "failed"]
    style = "green" if result.status == "done" else "red"
    console.print(f"[{style}]{found.title}: {result.status}[/] ({result.passed} passed, {len(failures)} failed)")
    if failures:
        console.print(f"[bold]{failures[0].name}[/]")
        console.print(failures[0].message, markup=False, highlight=False)
    return result


def _code(kata: manifest.Kata, solution, source: "str | None") -> str:
    if source is None:
        if solution is None:
            raise ValueError("give the function or class to check, or its code as source=...")
        try:
            source = inspect.getsource(solution)
        except (OSError, TypeError) as error:
            raise ValueError(f"Python cannot find the source of {solution!r} ({error}). Pass the cell's code as text: "
                             f"check({kata.id!r}, source=...)") from error
    code = f"{_imports(kata)}\n\n{textwrap.dedent(source)}\n"
    name = getattr(solution, "__name__", kata.symbol)
    if name != kata.symbol:
        code += f"\n{kata.symbol} = {name}\n"
    return code


def _imports(kata: manifest.Kata) -> str:
    """The import statements of the kata's stub: what its solution may use (torch, einops, parts, ...)."""
    stub = kata.reference_file.read_text(encoding="utf-8")
    lines = stub.splitlines()
    statements = [node for node in ast.parse(stub).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join("\n".join(lines[node.lineno - 1: node.end_lineno]) for node in statements)
