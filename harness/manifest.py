"""The manifest (manifest.toml at the project root): every kata in learning order."""
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.toml"


@dataclass(frozen=True)
class Kata:
    id: str  # "folder.name"
    title: str
    symbol: str  # the function or class the learner writes
    depends: tuple[str, ...]
    hints: tuple[str, ...]
    points: int

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

    @property
    def mutants_dir(self) -> Path:
        return ROOT / "tests" / "mutants" / self.folder / self.name

    def relative(self, path: Path) -> str:
        """`path` as shown to a user: from the project root when it is inside the project."""
        path = Path(path).resolve()
        return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def read_toml(path: Path) -> dict:
    """A TOML file (tomllib, or tomli before Python 3.11): the manifest, a kata's mutants."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def katas() -> tuple[Kata, ...]:
    data = read_toml(MANIFEST)
    return tuple(
        Kata(
            id=entry["id"],
            title=entry["title"],
            symbol=entry["symbol"],
            depends=tuple(entry.get("depends", ())),
            hints=tuple(entry["hints"]),
            points=int(entry.get("points", 1)),
        )
        for entry in data["kata"]
    )


def get(kata_id: str) -> Kata:
    for kata in katas():
        if kata.id == kata_id:
            return kata
    known = ", ".join(k.id for k in katas())
    raise KeyError(f"no kata {kata_id!r} in manifest.toml; known katas: {known}")


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
