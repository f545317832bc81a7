"""Helpers for the kata suites, one module per purpose. This package itself holds what is under test.

- `asserts`: teaching asserts (type, then shape with axis names, dtype, NaNs, values with the worst
  entry, then a hint) and `diagnose`, which names a known mistake only when the output shows it.
- `data`: seeded tensors, token ids and random non-zero parameters.
- `strategies`: Hypothesis strategies and the named configs.
- `oracles`: what a suite compares with: the reference solutions (`check_matches_reference`,
  `matching_modules`) and Hugging Face's GPT-2 (`hf_gpt2`, `check_matches_hugging_face`, `hf_generate`,
  `hf_generate_banning_ngrams`, `likely_eos`).
- `properties`: checks that need no oracle: causality, batch independence, inputs left unchanged.
- `dtypes`: float64 / bfloat16 and `meta`-device checks, against the reference.
- `gradients`: gradients against the reference's.
- `recorders`: wrappers that record how a model is called (positions fed, train/eval mode).
- `context`: going past the context is refused up front, with the one message of every generation function.
- `padding`: left-padded batches, and Hugging Face's answers on them.
- `interp`: the trained induction model, random models with their Hugging Face twins, repeated and
  corrupted sequences, and `check_model_unchanged`, for the interpretability suites.

Every check reports in the same order: type, then shape (with axis names), then dtype, then
NaNs, then values (the largest difference and where it is), then a hint.
"""
from harness import loader, manifest

# ---------------------------------------------------------------- what is under test
from harness.checker import isolation


class UnderTest:
    """The kata under test, loaded lazily at the first call so that a broken file fails
    that kata's tests (with a message naming the file) rather than their collection."""

    def __init__(self, kata_id: str):
        self.kata = manifest.get(kata_id)

    def __call__(self, *args, **kwargs):
        if isolation.active():  # the learner's code runs in the kata's worker, never in this process
            return isolation.call_under_test(self.kata, args, kwargs)
        return loader.load_under_test(self.kata)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kata.symbol} from {self.kata.relative(loader.source_under_test(self.kata))}>"


def under_test(kata_id: str) -> UnderTest:
    return UnderTest(kata_id)


def reference(kata_id: str):
    return loader.load_reference(manifest.get(kata_id))


def as_the_kata_sees(kata_id: str, module):
    """`module` (harness.parts, torch or torch.nn.functional) as the code under test sees it: this
    process's own, or, isolated (as `kata grade` runs it), the kata's worker's copy. So a test can
    replace what the learner's code calls, in both modes:

        monkeypatch.setattr(as_the_kata_sees(KATA, parts), "train_step", recording_train_step)

    Isolated, the stand-in stays in this process and is called back across the wire."""
    if isolation.active():
        return InTheWorker(isolation.worker_for(manifest.get(kata_id)).module(module.__name__))
    return module


class InTheWorker:
    """An object of the worker (a module, a class), as monkeypatch can patch and restore it: every
    attribute is read and set there. (A wire stand-in has an instance __dict__ of its own, which
    monkeypatch would take for the object's and then restore by deleting the attribute there.)"""

    __slots__ = ("_remote",)

    def __init__(self, remote):
        object.__setattr__(self, "_remote", remote)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = getattr(self._remote, name)
        return InTheWorker(value) if isinstance(value, type(self._remote)) else value

    def __setattr__(self, name: str, value) -> None:
        from harness.sandbox import wire

        try:
            setattr(self._remote, name, value._remote if isinstance(value, InTheWorker) else value)
        except wire.PeerClosed:  # monkeypatch restoring after the kata's last test stopped its worker: nothing to restore
            pass

    def __call__(self, *args, **kwargs):
        return self._remote(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self._remote!r}, in the kata's worker>"


def stuck(kata_id: str) -> str:
    return f"Stuck? kata hint {kata_id}"
