"""The manifest (manifest.toml at the project root): every kata in learning order.

The project root (ROOT) is a Transformer Katas checkout: the folder that holds manifest.toml,
katas/ and reference/. Only the harness is a Python package; the katas, the reference
solutions and the suites are always read from a checkout:
- the checkout this harness lies in (an editable install, `pip install -e .`, or
  `python -m harness` run from a checkout): the parent of harness/, as always;
- otherwise (`pip install .` put the harness in site-packages) the working directory, or the
  nearest folder above it, that is a checkout. Outside one, katas() raises NotACheckout, which
  `kata` reports as "run kata inside a Transformer Katas checkout".
"""
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def is_checkout(folder: Path) -> bool:
    return (folder / "manifest.toml").is_file() and (folder / "katas").is_dir()


def find_root(start: "Path | None" = None) -> "Path | None":
    """The checkout this harness lies in, else `start` (the working directory) or the nearest
    folder above it that is a checkout; None when there is none."""
    beside = Path(__file__).resolve().parent.parent
    if is_checkout(beside):
        return beside
    start = Path.cwd().resolve() if start is None else Path(start).resolve()
    return next((folder for folder in (start, *start.parents) if is_checkout(folder)), None)


class NotACheckout(RuntimeError):
    """kata runs in a Transformer Katas checkout, and this is not one."""


ROOT = find_root() or Path.cwd().resolve()  # outside a checkout, katas() says so
MANIFEST = ROOT / "manifest.toml"


@dataclass(frozen=True)
class Kata:
    id: str  # "folder.name"
    title: str
    symbol: str  # the function or class the learner writes
    depends: tuple[str, ...]
    hints: tuple[str, ...]
    points: int
    why: str = ""  # what breaks in a real model without it (`kata solution` shows it; tests/test_manifest.py asks every kata for one)

    @property
    def folder(self) -> str:
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        return self.id.split(".")[1]

    def source(self, root: str) -> Path:
        """The kata's file under `root`: "katas" (the learner's) or "reference"."""
        return ROOT / root / self.folder / f"{self.name}.py"

    @property
    def file(self) -> Path:
        return self.source("katas")

    @property
    def reference_file(self) -> Path:
        return self.source("reference")

    @property
    def test_file(self) -> Path:
        return ROOT / "katas" / self.folder / f"test_{self.name}.py"

    def relative(self, path: Path) -> str:
        return shown(path)


def shown(path: Path) -> str:
    """`path` as shown to a user: from the project root when it is inside the project."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def read_toml(path: Path) -> dict:
    """A TOML file (tomllib, or tomli before Python 3.11): the manifest, a kata's mutants."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def katas() -> tuple[Kata, ...]:
    if not MANIFEST.is_file():
        raise NotACheckout(f"no manifest.toml in {ROOT} or any folder above it: run kata inside a Transformer Katas checkout "
                           "(the folder of manifest.toml, katas/ and reference/, or any folder below it)")
    data = read_toml(MANIFEST)
    return tuple(
        Kata(
            id=entry["id"],
            title=entry["title"],
            symbol=entry["symbol"],
            depends=tuple(entry.get("depends", ())),
            hints=tuple(entry["hints"]),
            points=int(entry.get("points", 1)),
            why=str(entry.get("why", "")).strip(),
        )
        for entry in data["kata"]
    )


def get(kata_id: str) -> Kata:
    for kata in katas():
        if kata.id == kata_id:
            return kata
    known = ", ".join(k.id for k in katas())
    raise KeyError(f"no kata {kata_id!r} in manifest.toml; known katas: {known}")


class UnknownKata(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def find(text: str) -> Kata:
    """A kata by its id (attention.causal_mask), its number in learning order (5), its name
    (causal_mask), its symbol (apply_causal_mask), or its file or test file's path."""
    text = text.strip()
    everything = katas()
    if text.isdigit() and 1 <= int(text) <= len(everything):
        return everything[int(text) - 1]
    stem = Path(text).stem.removeprefix("test_") if text.endswith(".py") else text
    for kata in everything:
        if text in (kata.id, kata.symbol) or stem in (kata.name, kata.id):
            return kata
    known = ", ".join(f"{number} {kata.id}" for number, kata in enumerate(everything, start=1))
    raise UnknownKata(f"no kata {text!r}: give its id, number, name or file. The katas: {known}")


def by_symbol(symbol: str) -> Kata:
    for kata in katas():
        if kata.symbol == symbol:
            return kata
    raise AttributeError(f"no kata provides {symbol!r}; see manifest.toml")


def for_test_file(path: Path) -> "Kata | None":
    path = Path(path).resolve()
    for kata in katas():
        if kata.test_file == path:
            return kata
    return None


def dependency_closure(kata: Kata) -> "set[str]":
    """The katas `kata` builds on, and the katas those build on, and so on (itself excluded)."""
    found: set[str] = set()
    waiting = list(kata.depends)
    while waiting:
        kata_id = waiting.pop()
        if kata_id not in found and kata_id != kata.id:
            found.add(kata_id)
            waiting.extend(get(kata_id).depends)
    return found
