"""The pytest internals the fork server needs, in one place (public pytest API has no equivalent).

A forked run must see the modules the server imported before it (pytest's plugins, Hypothesis,
the harness's plugins) exactly as a cold run sees them: imported through pytest's assertion
rewriter. That takes `_pytest` names that a pytest release may move; tests/test_forkserver.py
imports each of them and fails loudly, naming this file, when one goes. Where they are missing,
rewriting_hook returns None and the server imports only what pytest would not rewrite.
"""
import atexit
import importlib.metadata


def rewritten_names(extra: tuple) -> set:
    """What a cold pytest run marks for assertion rewriting before it imports it: the modules of
    every distribution with a pytest plugin, and `extra` (the harness's own plugins, the conftest)."""
    from _pytest.config import _iter_rewritable_modules, _plugin_rewrite_name

    names = set(extra)
    for dist in importlib.metadata.distributions():
        entry_points = [entry for entry in dist.entry_points if entry.group == "pytest11"]
        if entry_points:
            found = set(_iter_rewritable_modules(str(file) for file in dist.files or []))
            names |= found or {name for entry in entry_points if (name := _plugin_rewrite_name(entry.value.partition(":")[0].strip()))}
    return names


class _NoTrace:
    def __call__(self, *args) -> None:
        pass

    def get(self, name: str) -> "_NoTrace":
        return self


class _RewriteConfig:
    """The little of a pytest Config that its assertion rewriter reads while importing modules."""

    def __init__(self):
        import pytest
        from _pytest.assertion import AssertionState, assertstate_key

        self.trace = type("Trace", (), {"root": _NoTrace()})()
        self.stash = pytest.Stash()
        self.stash[assertstate_key] = AssertionState(self, "rewrite")

    def getini(self, name: str):
        return {"python_files": ["test_*.py"], "enable_assertion_pass_hook": False}[name]

    def issue_config_time_warning(self, warning, stacklevel: int) -> None:
        pass


def rewriting_hook(extra: tuple):
    """pytest's assertion-rewriting import hook, marked as a cold run marks it; None on a pytest
    whose internals moved (the caller then leaves those modules for the forked run to import)."""
    try:
        from _pytest.assertion.rewrite import AssertionRewritingHook

        hook = AssertionRewritingHook(_RewriteConfig())
        hook.mark_rewrite(*rewritten_names(extra))
        return hook
    except Exception:  # noqa: BLE001 - another pytest
        return None


def run_exit_functions() -> None:
    """What a process that ends normally runs: a forked run ends with os._exit, which skips them."""
    atexit._run_exitfuncs()
