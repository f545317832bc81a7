"""The files a grade depends on, and their sha256 as recorded upstream.

Everything but the learner's kata files: the manifest, the harness, the reference solutions,
the suites (katas/*/test_*.py) and the packages' __init__.py, conftest.py and pyproject.toml.
TRUSTED_HASHES lists them (`kata hashes --write` records it; a test checks it is up to date).
`kata grade` refuses to grade when one of them differs, and runs the suites in a staged copy
made of exactly these files plus the learner's kata files, so nothing else a fork adds (a
katas/conftest.py, say) takes part.

Line endings are normalised before hashing, so a Windows checkout matches too.
"""
import hashlib
from pathlib import Path

from harness import manifest

TRUSTED_HASHES = manifest.ROOT / "harness" / "trusted-files.sha256"
TRUSTED_PATTERNS = ("manifest.toml", "pyproject.toml", "conftest.py", "harness/**/*.py", "reference/**/*.py",
                    "katas/**/test_*.py", "katas/**/__init__.py", "katas/**/conftest.py")


def learner_files() -> list[str]:
    """The files a learner writes, relative to any checkout: one per kata, the only files graded from a fork."""
    return [kata.relative(kata.file) for kata in manifest.katas()]


def trusted_files(root: Path = manifest.ROOT) -> list[str]:
    learner = set(learner_files())
    found = {path.relative_to(root).as_posix() for pattern in TRUSTED_PATTERNS for path in root.glob(pattern)
             if path.is_file() and "__pycache__" not in path.parts}
    return sorted(found - learner)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def current_hashes(root: Path = manifest.ROOT) -> dict[str, str]:
    return {name: digest(root / name) for name in trusted_files(root)}


def format_hashes(hashes: dict[str, str]) -> str:
    return "".join(f"{value}  {name}\n" for name, value in sorted(hashes.items()))


def recorded_hashes(path: Path = TRUSTED_HASHES) -> dict[str, str]:
    hashes = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            value, name = line.split(maxsplit=1)
            hashes[name.lstrip("*")] = value
    return hashes


def problems(root: Path = manifest.ROOT, hashes_file: Path = TRUSTED_HASHES) -> list[str]:
    """How the grading files under `root` differ from the recorded ones; empty when they do not."""
    if not hashes_file.is_file():
        return [f"{hashes_file.name} is missing: the grading files cannot be checked"]
    recorded = recorded_hashes(hashes_file)
    found = []
    for name, value in recorded.items():
        path = root / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif digest(path) != value:
            found.append(f"{name} differs from upstream")
    return found


def fingerprint(hashes_file: Path = TRUSTED_HASHES) -> str:
    """One hash for the whole set: compare it with upstream's to know the grader is upstream's."""
    return digest(hashes_file)[:16] if hashes_file.is_file() else "none"
