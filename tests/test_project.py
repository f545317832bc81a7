"""The project's own files: the lint pin agrees everywhere it is written."""
import configparser
import re

from harness import manifest
from harness.manifest import read_toml

ROOT = manifest.ROOT


def test_tox_lints_with_the_ruff_of_the_lint_extra():
    extra = read_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]["lint"]
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    deps = [line.strip() for line in tox["testenv:lint"]["deps"].splitlines() if line.strip()]
    assert deps == extra
    assert any(re.fullmatch(r"ruff>=[\d.]+,<[\d.]+", requirement) for requirement in extra), "pin ruff to a range of versions"
