"""Stubs are the reference with the solution taken out.

`python -m harness stub KATA` prints the stub of a kata from its reference: the same file,
with the body of the kata's function (or of its class's forward) replaced by
`raise NotImplementedError`, docstring kept. A class with no forward (a data structure such as
the KV cache) has every public method stubbed instead; its __init__ is given. `interface` is what
katas/ and reference/ must share: the function's signature, or the class's __init__ and the
signatures of the methods to write.
"""
import ast
from pathlib import Path


def _methods_to_write(node: ast.ClassDef) -> "list[ast.FunctionDef]":
    methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
    forward = [method for method in methods if method.name == "forward"]
    return forward or [method for method in methods if not method.name.startswith("_")]


def _solution_functions(tree: ast.Module, symbol: str) -> "list[ast.FunctionDef]":
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            return [node]
        if isinstance(node, ast.ClassDef) and node.name == symbol:
            if not _methods_to_write(node):
                raise ValueError(f"class {symbol} has no forward and no public method")
            return _methods_to_write(node)
    raise ValueError(f"no top-level function or class named {symbol}")


def stub_source(reference_file: Path, symbol: str) -> str:
    source = Path(reference_file).read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    # From the bottom up, so that the line numbers of the functions above stay right.
    for function in reversed(_solution_functions(ast.parse(source), symbol)):
        body = function.body
        has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        cut = body[0].end_lineno if has_docstring else body[0].lineno - 1
        indent = " " * body[0].col_offset
        lines = lines[:cut] + [f"{indent}raise NotImplementedError\n"] + lines[function.end_lineno :]
    return "".join(lines)


def is_untouched(kata) -> bool:
    """The kata's file (katas/...) is still the stub as shipped: the stub of its reference, to the
    byte. False when it differs, or cannot be read or made."""
    try:
        return kata.file.read_text(encoding="utf-8") == stub_source(kata.reference_file, kata.symbol)
    except (OSError, ValueError, SyntaxError):
        return False


def interface(path: Path, symbol: str) -> list[str]:
    """The parts of a kata file that the learner's copy must keep as the reference has them."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            return [_signature(node)]
        if isinstance(node, ast.ClassDef) and node.name == symbol:
            methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
            parts = [ast.unparse(methods["__init__"])] if "__init__" in methods else []
            return parts + [_signature(method) for method in _methods_to_write(node)]
    return []


def _signature(function: "ast.FunctionDef") -> str:
    returns = f" -> {ast.unparse(function.returns)}" if function.returns else ""
    return f"def {function.name}({ast.unparse(function.args)}){returns}"
