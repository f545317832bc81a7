"""The harness's layout is its architecture: packages by process, no import cycles, short modules."""
import ast
from pathlib import Path

from harness import manifest

HARNESS = manifest.ROOT / "harness"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_imports(path: Path, known: set[str]) -> set[str]:
    """Every harness module `path` imports, at module level or inside a function (a lazy import is a
    dependency too): `from harness.x import y` counts harness.x.y when that is a module, else harness.x."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("harness"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return found & known


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in HARNESS.rglob("*.py") if "__pycache__" not in path.parts}
    known = set(paths)
    return {name: {dep for dep in harness_imports(path, known) if dep != name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> "list[str] | None":
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> "list[str] | None":
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return trail[trail.index(dep):] + [dep] if dep in trail else [node, dep]
            if dep not in state and (cycle := visit(dep, trail + [dep])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_no_harness_module_imports_itself_through_a_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "an import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_harness_module_is_over_500_lines():
    long = {module_name(path): n for path in HARNESS.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines each): {long}"


def test_the_folders_are_the_processes():
    """The kata API at the top; one package per process or audience; every module in one of them."""
    packages = {path.name for path in HARNESS.iterdir() if (path / "__init__.py").is_file()}
    assert packages == {"commands", "run", "checker", "sandbox", "grading", "authoring", "testing"}
