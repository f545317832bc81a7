"""`pip install .` (not -e): only the harness is installed, and its `kata` works in any checkout.

The wheel is built offline from a copy of this checkout (no build isolation: the test extra
brings setuptools) and installed without its dependencies into a scratch venv that sees this
environment's packages through a .pth file (so nothing is downloaded). That `kata` then runs
in a fresh copy of the checkout, and outside any checkout, where it says so.
"""
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from harness import manifest

pytestmark = pytest.mark.subprocess  # starts processes of its own: not in make quick

NOT_COPIED = (".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
              ".benchmarks", "runs", "reports", "*.whl")


def run(command, cwd, **kwargs):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "KATA_IMPL")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def scripts(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(a scratch venv with the wheel installed, a fresh copy of the checkout, the wheel)."""
    tmp = tmp_path_factory.mktemp("install")
    checkout = tmp / "checkout"
    shutil.copytree(manifest.ROOT, checkout, ignore=shutil.ignore_patterns(*NOT_COPIED))
    build = tmp / "build"
    shutil.copytree(checkout, build)  # setuptools writes build/ and *.egg-info beside the sources
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                 "-w", str(tmp / "wheels"), "."], cwd=build)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp / "wheels").glob("transformer_katas-*.whl"))

    venv = tmp / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = scripts(venv) / ("python.exe" if os.name == "nt" else "python")
    done = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    # Only now this environment's packages (torch, rich, ...), after the venv's own: a plain
    # path, so their .pth files (this checkout's editable install) are not run.
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (purelib / "_this_environment.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return venv, checkout, wheel


@pytest.mark.slow
def test_the_wheel_holds_the_harness_only(installed):
    _, _, wheel = installed
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {name for name in top if not name.endswith(".dist-info")} == {"harness"}
    print(f"{wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB")


@pytest.mark.slow
def test_the_installed_kata_runs_in_a_fresh_checkout(installed):
    venv, checkout, _ = installed
    kata = str(scripts(venv) / "kata")
    helped = run([kata, "--help"], cwd=checkout)
    assert helped.returncode == 0 and "train" in helped.stdout, helped.stdout + helped.stderr
    status = run([kata], cwd=checkout / "katas" / "attention")  # any folder of the checkout will do
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"0 of {len(manifest.katas())} katas done" in status.stdout
    assert "katas/embeddings/token_embedding.py" in status.stdout
    where = run([str(scripts(venv) / "python"), "-c", "import harness, importlib.util as u; "
                 "print(harness.__file__, u.find_spec('katas'), u.find_spec('reference'))"], cwd=venv)
    assert where.stdout.split()[0].startswith(str(venv)) and where.stdout.split()[1:] == ["None", "None"], where.stdout + where.stderr


@pytest.mark.slow
def test_the_installed_kata_outside_a_checkout_says_so(installed, tmp_path):
    venv, _, _ = installed
    kata = str(scripts(venv) / "kata")
    assert run([kata, "--help"], cwd=tmp_path).returncode == 0
    for command in ([kata], [kata, "hint", "layernorm.layer_norm"], [kata, "next"]):
        outside = run(command, cwd=tmp_path)
        assert outside.returncode == 2 and "run kata inside a Transformer Katas checkout" in outside.stdout, outside.stdout + outside.stderr
        assert "Traceback" not in outside.stdout + outside.stderr
