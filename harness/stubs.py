"""Stubs are the reference with the solution taken out.

`python -m harness stub KATA` prints the stub of a kata from its reference: the same file,
with the body of the kata's function (or of its class's forward) replaced by
`raise NotImplementedError`, docstring kept. `interface` is what katas/ and reference/ must
share: the function's signature, or the class's __init__ and forward's signature.
"""
import ast
from pathlib import Path


def _solution_function(tree: ast.Module, symbol: str) -> "ast.FunctionDef":
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            return node
        if isinstance(node, ast.ClassDef) and node.name == symbol:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    return item
            raise ValueError(f"class {symbol} has no forward method")
    raise ValueError(f"no top-level function or class named {symbol}")


def stub_source(reference_file: Path, symbol: str) -> str:
    source = Path(reference_file).read_text(encoding="utf-8")
    function = _solution_function(ast.parse(source), symbol)
    body = function.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    cut = body[0].end_lineno if has_docstring else body[0].lineno - 1
    lines = source.splitlines(keepends=True)
    indent = " " * body[0].col_offset
    return "".join(lines[:cut]) + f"{indent}raise NotImplementedError\n" + "".join(lines[function.end_lineno :])


def interface(path: Path, symbol: str) -> list[str]:
    """The parts of a kata file that the learner's copy must keep as the reference has them."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            return [_signature(node)]
        if isinstance(node, ast.ClassDef) and node.name == symbol:
            methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
            parts = [ast.unparse(methods["__init__"])] if "__init__" in methods else []
            return parts + ([_signature(methods["forward"])] if "forward" in methods else [])
    return []


def _signature(function: "ast.FunctionDef") -> str:
    returns = f" -> {ast.unparse(function.returns)}" if function.returns else ""
    return f"def {function.name}({ast.unparse(function.args)}){returns}"
