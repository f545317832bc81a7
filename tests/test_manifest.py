"""The manifest, the folders, the hints and the mutants agree."""
import ast
import re

import pytest

from harness import manifest
from harness.authoring.checks import MIN_MUTANTS_PER_KATA, mutants_of
from harness.authoring.stubs import interface, stub_source

KATAS = manifest.katas()
IDS = [kata.id for kata in KATAS]


def test_ids_and_symbols_are_unique():
    assert len(set(IDS)) == len(IDS), "two katas share an id"
    symbols = [kata.symbol for kata in KATAS]
    assert len(set(symbols)) == len(symbols), "two katas share a symbol: harness.parts could not tell them apart"


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_kata_has_its_stub_reference_and_tests(kata):
    for path in (kata.file, kata.reference_file, kata.test_file):
        assert path.is_file(), f"{kata.id}: {kata.relative(path)} is missing"


def test_katas_and_reference_mirror_each_other_file_for_file():
    def solution_files(root):
        base = manifest.ROOT / root
        return {p.relative_to(base).as_posix() for p in base.rglob("*.py") if not p.name.startswith("test_")}

    assert solution_files("katas") == solution_files("reference")
    listed = {f"{kata.folder}/{kata.name}.py" for kata in KATAS}
    packages = {p for p in solution_files("reference") if p.endswith("__init__.py")}
    assert solution_files("reference") - packages == listed, "a kata file is not in manifest.toml, or the reverse"


def test_every_test_file_in_katas_belongs_to_a_kata():
    test_files = set((manifest.ROOT / "katas").rglob("test_*.py"))
    assert test_files == {kata.test_file for kata in KATAS}


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_the_learners_file_keeps_the_references_interface(kata):
    expected = interface(kata.reference_file, kata.symbol)
    assert expected, f"{kata.relative(kata.reference_file)} defines no {kata.symbol}"
    assert interface(kata.file, kata.symbol) == expected, (
        f"{kata.relative(kata.file)}: keep the signature (and __init__) of {kata.symbol} as the reference has it"
    )


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_the_stub_teaches_and_raises(kata):
    stub = ast.parse(stub_source(kata.reference_file, kata.symbol))
    assert ast.get_docstring(stub), f"{kata.id}: the kata file needs a module docstring that teaches"
    source = stub_source(kata.reference_file, kata.symbol)
    assert "raise NotImplementedError" in source
    signature = " ".join(interface(kata.reference_file, kata.symbol))
    assert "Float[" in signature or "Int[" in signature or "dict[str, Tensor]" in signature, (
        f"{kata.id}: tensors in the signature need jaxtyping shape annotations"
    )


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_hints_are_graded_and_do_not_give_the_answer_away(kata):
    assert len(kata.hints) >= 2 and all(hint.strip() for hint in kata.hints), f"{kata.id}: at least two levels of hints"
    reference = kata.reference_file.read_text(encoding="utf-8")
    stub = stub_source(kata.reference_file, kata.symbol)
    solution_lines = {line.strip() for line in reference.splitlines()} - {line.strip() for line in stub.splitlines()}
    for hint in kata.hints:
        for line in solution_lines:
            assert len(line) < 20 or line not in hint, f"{kata.id}: a hint quotes the solution: {line!r}"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_.()\[\]*/+-]+", text.lower())


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_no_hint_repeats_the_docstring(kata):
    """A hint adds what the docstring does not say: none shares a run of 7 words with it."""
    tree = ast.parse(stub_source(kata.reference_file, kata.symbol))
    docstrings = [ast.get_docstring(node) or "" for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))]
    words = _words("\n".join(docstrings))
    runs = {tuple(words[i:i + 7]) for i in range(len(words) - 6)}
    for hint in kata.hints:
        hint_words = _words(hint)
        repeated = [" ".join(hint_words[i:i + 7]) for i in range(len(hint_words) - 6) if tuple(hint_words[i:i + 7]) in runs]
        assert not repeated, f"{kata.id}: a hint repeats the docstring ({repeated[0]!r}): {hint}"


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_dependencies_come_earlier_and_match_the_parts_used(kata):
    order = {kata_id: index for index, kata_id in enumerate(IDS)}
    for dependency in kata.depends:
        assert dependency in order, f"{kata.id} depends on unknown kata {dependency}"
        assert order[dependency] < order[kata.id], f"{kata.id} comes before its dependency {dependency}"
    tree = ast.parse(kata.reference_file.read_text(encoding="utf-8"))
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "parts"}
    declared = {manifest.get(dependency).symbol for dependency in kata.depends}
    assert used <= declared, (
        f"{kata.id}: its reference uses parts {sorted(used - declared)} that its manifest entry does not depend on"
    )


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_kata_has_mutants_that_apply_to_its_reference(kata):
    mutants = mutants_of(kata)
    assert len(mutants) >= MIN_MUTANTS_PER_KATA, f"{kata.id}: {len(mutants)} mutants"
    for mutant in mutants:
        assert mutant.mistake.strip()
        assert mutant.source() != kata.reference_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_kata_says_why_it_matters(kata):
    """The loader accepts a kata without `why` (it defaults to ""), but every shipped kata has one."""
    assert len(kata.why) > 40, f"{kata.id}: add why = \"...\" to its table in manifest.toml (what breaks in a real model without it)"


def test_points_are_positive():
    assert all(kata.points > 0 for kata in KATAS)


def _expected_errors(test_file) -> "list[tuple[str, int]]":
    """(exception name, line) of every error a suite demands: pytest.raises(X, ...), and `try: ... except X:
    return` (the test passes only when X is raised); a tuple of types gives each."""
    found = []
    for node in ast.walk(ast.parse(test_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.raises" and node.args:
            kind = node.args[0]
        elif isinstance(node, ast.ExceptHandler) and node.type is not None and len(node.body) == 1 and \
                isinstance(node.body[0], ast.Return) and node.body[0].value is None:
            kind = node.type
        else:
            continue
        kinds = kind.elts if isinstance(kind, ast.Tuple) else [kind]
        found += [(ast.unparse(each).rsplit(".", 1)[-1], node.lineno) for each in kinds]
    return found


def _docstrings(source: str) -> str:
    tree = ast.parse(source)
    nodes = [tree] + [node for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return "\n".join(ast.get_docstring(node) or "" for node in nodes)


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_error_a_suite_expects_is_documented_in_the_stub(kata):
    """A learner reads only the stub: an error the suite demands (pytest.raises) must be named in its docstrings."""
    documented = _docstrings(kata.file.read_text(encoding="utf-8"))
    missing = [f"{name} (line {line})" for name, line in _expected_errors(kata.test_file) if name not in documented]
    assert not missing, (f"{kata.relative(kata.test_file)} expects {', '.join(missing)}, which the docstrings of "
                         f"{kata.relative(kata.file)} never name: say when it is raised (edit the reference's docstring, "
                         f"then python -m harness stub {kata.id} > {kata.relative(kata.file)})")
