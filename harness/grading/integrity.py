"""The files a grade depends on, and whether they are as committed.

Everything but the learner's kata files: the manifest, the harness, the reference solutions,
the suites (katas/*/test_*.py) and the packages' __init__.py, conftest.py and pyproject.toml.
`kata grade` refuses to grade when one of them differs from the commit checked out in the
grader's git checkout (modified, deleted or not committed), and runs the suites in a staged copy
made of exactly these files plus the learner's kata files, so nothing else a fork adds (a
katas/conftest.py, say) takes part. The commit itself says which grader graded: instructors pin it
(KATAS_UPSTREAM_REF), and reports name it. Outside a git checkout nothing can be compared: the
reports say the grading files are unverified.

Line endings are normalised before hashing (the verdict cache's keys), so a Windows checkout matches too.
"""
import hashlib
import os
import subprocess
from pathlib import Path

from harness import manifest

# The grading files: staged for every grade, and compared with the grader's commit. harness/models holds
# the weights the interpretability suites run on (harness/induction.py).
TRUSTED_PATTERNS = ("manifest.toml", "pyproject.toml", "conftest.py", "harness/**/*.py", "harness/models/*.safetensors",
                    "reference/**/*.py", "katas/**/test_*.py", "katas/**/__init__.py", "katas/**/conftest.py")


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


ALLOW_MODIFIED = "KATA_ALLOW_MODIFIED_GRADER"  # development only: grade with uncommitted grading files


def _git(root: Path, *args: str) -> "str | None":
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _is_trusted(name: str) -> bool:
    """Whether a path (relative, with slashes) is a grading file by TRUSTED_PATTERNS, existing or not."""
    parts = name.split("/")
    if len(parts) == 1:
        return name in ("manifest.toml", "pyproject.toml", "conftest.py")
    if not name.endswith(".py"):
        return len(parts) == 3 and parts[:2] == ["harness", "models"] and name.endswith(".safetensors")
    if parts[0] == "katas":
        return parts[-1].startswith("test_") or parts[-1] in ("__init__.py", "conftest.py")
    return parts[0] in ("harness", "reference")


def problems(root: Path = manifest.ROOT) -> list[str]:
    """How the grading files under `root` differ from the commit checked out there; empty when
    they do not (or when `root` is not a git checkout: see fingerprint). A contributor grading
    with uncommitted changes (the grading tests, the attacks) sets ALLOW_MODIFIED=1."""
    if os.environ.get(ALLOW_MODIFIED) == "1":
        return []
    if _git(root, "rev-parse", "--show-toplevel") is None:
        return []
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                  "manifest.toml", "pyproject.toml", "conftest.py", "harness", "reference", "katas")
    if status is None:
        return ["git could not say whether the grading files are as committed"]
    learner = set(learner_files())
    found = []
    for entry in filter(None, status.split("\0")):
        code, name = entry[:2], entry[3:]
        if name in learner or not _is_trusted(name):
            continue
        if code == "??":
            found.append(f"{name} is not committed")
        elif "D" in code:
            found.append(f"{name} is missing")
        else:
            found.append(f"{name} differs from the commit checked out")
    return found


def fingerprint(root: Path = manifest.ROOT) -> str:
    """Which grader graded: the commit checked out (and "modified" when problems() finds any)."""
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if commit is None:
        return "unverified (not a git checkout)"
    if os.environ.get(ALLOW_MODIFIED) == "1":
        return commit.strip() + f" (not checked: {ALLOW_MODIFIED}=1)"
    return commit.strip() + (" (modified)" if problems(root) else "")


def format_hashes(hashes: dict[str, str]) -> str:
    return "".join(f"{value}  {name}\n" for name, value in sorted(hashes.items()))
