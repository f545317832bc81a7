"""Helpers for the kata suites, one module per purpose. This package itself holds what is under test.

- `asserts`: teaching asserts (type, then shape with axis names, dtype, NaNs, values with the worst
  entry, then a hint) and `diagnose`, which names a known mistake only when the output shows it.
- `data`: seeded tensors, token ids and random non-zero parameters.
- `strategies`: Hypothesis strategies and the named configs.
- `oracles`: what a suite compares with: the reference solutions (`check_matches_reference`,
  `matching_modules`) and Hugging Face's GPT-2 (`hf_gpt2`, `check_matches_hugging_face`, `hf_generate`,
  `hf_generate_banning_ngrams`).
- `properties`: checks that need no oracle: causality, batch independence, inputs left unchanged.
- `dtypes`: float64 / bfloat16 and `meta`-device checks, against the reference.
- `gradients`: gradients against the reference's.
- `recorders`: wrappers that record how a model is called (positions fed, train/eval mode).
- `context`: going past the context is refused up front, with the one message of every generation function.
- `padding`: left-padded batches, and Hugging Face's answers on them.

Every check reports in the same order: type, then shape (with axis names), then dtype, then
NaNs, then values (the largest difference and where it is), then a hint.
"""
from harness import isolation, loader, manifest

# ---------------------------------------------------------------- what is under test


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


def stuck(kata_id: str) -> str:
    return f"Stuck? kata hint {kata_id}"
