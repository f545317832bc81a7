"""The one place the fork server leans on pytest's internals (harness/run/pytest_shim.py): these
tests fail loudly on a pytest release that moves them, instead of warm runs quietly differing from
cold ones."""
import sys

from harness.run import pytest_shim

SHIM = "harness/run/pytest_shim.py"


def test_the_private_pytest_names_the_shim_uses_still_exist():
    import atexit

    from _pytest.assertion import AssertionState, assertstate_key  # noqa: F401
    from _pytest.assertion.rewrite import AssertionRewritingHook  # noqa: F401
    from _pytest.config import _iter_rewritable_modules, _plugin_rewrite_name  # noqa: F401

    assert callable(atexit._run_exitfuncs), f"atexit._run_exitfuncs is gone: update {SHIM}"


def test_a_module_imported_through_the_shims_hook_has_its_asserts_rewritten(tmp_path, monkeypatch):
    (tmp_path / "shim_probe.py").write_text("def check():\n    found = [1, 2]\n    assert found == [1, 3]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = pytest_shim.rewriting_hook(("shim_probe",))
    assert hook is not None, f"pytest's assertion-rewriting hook could not be built: update {SHIM}"
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    monkeypatch.delitem(sys.modules, "shim_probe", raising=False)
    import shim_probe

    try:
        shim_probe.check()
    except AssertionError as error:
        assert "[1, 2] == [1, 3]" in str(error), f"the assert was not rewritten as pytest rewrites it ({error!r}): update {SHIM}"
    else:
        raise AssertionError("the probe's assert did not fail")


def test_the_plugins_pytest_rewrites_are_found():
    names = pytest_shim.rewritten_names(("conftest",))
    assert "conftest" in names and any(name.startswith(("hypothesis", "_hypothesis")) for name in names), names
