"""Loads each kata's code from its file, and decides whose code that is.

Three roles, three rules:
- the kata under test comes from katas/ (the learner's), or reference/ with --reference,
  or from any file named by --swap KATA=FILE (how the mutants are run);
- the katas it builds on, reached through `harness.parts`, are the reference ones, so that
  each kata gets a verdict of its own;
- every function and every module's forward is wrapped in jaxtyping + beartype, so the
  shape annotations in the signatures are checked on every call.
"""
import functools
import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from beartype import beartype
from jaxtyping import jaxtyped

from harness import manifest
from harness.manifest import Kata


class KataImportError(Exception):
    """A kata's file could not be imported, or does not define what the manifest says."""


# Whose code is under test: "katas" (the learner's) or "reference", plus per-kata swaps.
_under_test_root = "katas"
_swaps: dict[str, Path] = {}
# Whose code `harness.parts` hands out: the reference, except for the katas listed here.
_learner_parts: set[str] = set()


def configure(*, reference: bool = False, swaps: "dict[str, Path] | None" = None) -> None:
    global _under_test_root, _swaps
    _under_test_root = "reference" if reference else "katas"
    _swaps = {manifest.get(kata_id).id: Path(path).resolve() for kata_id, path in (swaps or {}).items()}


# In a worker (harness.sandbox.worker), the solutions this kata may reach through `harness.parts`: the
# katas it builds on, and theirs, in turn. None outside a worker: every part is reachable.
_reachable_parts: "set[str] | None" = None
_worker_kata: "Kata | None" = None
_rebuilt_parts: "set[str]" = set()  # reference modules a test may hand the worker, and what they use


def configure_worker(kata: Kata) -> None:
    """The worker of `kata`: its file is the one under test; `parts` offers only what it builds on.
    The reference code of modules that tests hand to it (harness.sandbox.crossing.rebuildable_katas)
    may use their own parts, but the kata's file may not."""
    global _reachable_parts, _worker_kata, _rebuilt_parts
    from harness.sandbox.crossing import rebuildable_katas

    _worker_kata, _reachable_parts = kata, manifest.dependency_closure(kata)
    _rebuilt_parts = rebuildable_katas(kata)


def _called_from_reference() -> bool:
    """Whether the code asking `parts` for something is a reference solution (not the kata's file)."""
    frame = sys._getframe(2)
    while frame is not None and _where(frame.f_code.co_filename) == "harness":
        frame = frame.f_back
    return frame is not None and _where(frame.f_code.co_filename) == "reference"


@functools.lru_cache(maxsize=None)
def _where(filename: str) -> str:
    """"harness" (this folder), "reference" (under reference/) or "" for a code file: resolved once per
    file name, since a generation loop asks thousands of times and resolving a path is slow."""
    path = Path(filename).resolve()
    if path.parent == Path(__file__).resolve().parent:
        return "harness"
    return "reference" if path.is_relative_to(manifest.ROOT / "reference") else ""


def use_learner_parts(kata_ids: "set[str]") -> None:
    """Let `harness.parts` hand out the learner's solutions of these katas (for demos)."""
    global _learner_parts
    _learner_parts = set(kata_ids)


def describe_under_test() -> str:
    who = "reference solutions (reference/)" if _under_test_root == "reference" else "your katas (katas/)"
    swapped = "".join(f"; {kata_id} from {path}" for kata_id, path in _swaps.items())
    return f"kata under test: {who}{swapped}; the katas it builds on: reference solutions"


def source_under_test(kata: Kata) -> Path:
    return _swaps.get(kata.id, kata.source(_under_test_root))


def load_under_test(kata: Kata):
    return load(source_under_test(kata), kata.symbol)


def load_reference(kata: Kata):
    return load(kata.reference_file, kata.symbol)


_parts: dict[tuple[str, str], object] = {}


def load_part(kata: Kata):
    # Memoised by kata id: generation looks parts up thousands of times, and paths are slow.
    if _reachable_parts is not None and kata.id not in _reachable_parts and not (
            kata.id in _rebuilt_parts and _called_from_reference()):
        if kata.id == _worker_kata.id:
            raise KataImportError(f"`parts.{kata.symbol}` is this kata's own solution: a kata may not use it. "
                                  "It is yours to write.")
        raise KataImportError(f"`parts.{kata.symbol}` ({kata.id}) is not one of the katas that {_worker_kata.id} builds on "
                              "(manifest.toml, depends): it is not available while this kata is graded.")
    root = "katas" if kata.id in _learner_parts else "reference"
    if (kata.id, root) not in _parts:
        _parts[kata.id, root] = load(kata.source(root), kata.symbol)
    return _parts[kata.id, root]


_loaded: dict[tuple[Path, str], object] = {}


def load(path: Path, symbol: str):
    """Import `path` as a fresh module and return its `symbol`, type-checked."""
    path = Path(path).resolve()
    if (path, symbol) not in _loaded:
        module = _import_file(path)
        if not hasattr(module, symbol):
            raise KataImportError(f"{manifest.shown(path)} does not define `{symbol}` (the manifest says it should)")
        _loaded[path, symbol] = type_checked(getattr(module, symbol))
    return _loaded[path, symbol]


def _import_file(path: Path):
    if not path.is_file():
        raise KataImportError(f"{manifest.shown(path)} does not exist")
    # A name of its own per file, so the learner's, the reference and a mutant never collide;
    # inside the project it is the file's dotted path ("katas.attention.causal_mask").
    if path.is_relative_to(manifest.ROOT):
        name = ".".join(path.relative_to(manifest.ROOT).with_suffix("").parts)
    else:
        name = f"_swapped_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a syntax error, a bad import, anything raised at import time
        del sys.modules[name]
        raise KataImportError(f"{manifest.shown(path)} could not be imported:\n{_explain(error, path)}") from error
    return module


def _explain(error: BaseException, path: Path) -> str:
    if isinstance(error, SyntaxError):
        return "".join(traceback.format_exception_only(type(error), error)).rstrip()
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path]
    where = f"  line {frames[-1].lineno}: {frames[-1].line}\n" if frames else ""
    return f"{where}{type(error).__name__}: {error}"



def type_checked(obj):
    """Check jaxtyping annotations at run time: a function itself, a module's forward."""
    if isinstance(obj, type):
        # A module's forward; or, for a class without one (the KV cache), its public methods.
        names = ["forward"] if "forward" in obj.__dict__ else [name for name in obj.__dict__ if not name.startswith("_")]
        for name in names:
            method = obj.__dict__[name]
            if callable(method) and not getattr(method, "_kata_checked", False):
                checked = jaxtyped(typechecker=beartype)(method)
                checked._kata_checked = True
                setattr(obj, name, checked)
        return obj
    if callable(obj):
        return jaxtyped(typechecker=beartype)(obj)
    return obj
