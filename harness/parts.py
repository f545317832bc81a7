"""Other katas' solutions, for a kata that builds on them.

A kata file writes `from harness import parts` and calls `parts.attention_scores(q, k)` or
builds `parts.LayerNorm(cfg)`. While a kata is graded, every part is the reference solution,
so a mistake in one kata never fails another. Each name is a kata's symbol in manifest.toml.
"""
from harness import loader, manifest


def __getattr__(symbol: str):
    if symbol.startswith("__"):
        raise AttributeError(symbol)
    return loader.load_part(manifest.by_symbol(symbol))


def __dir__():
    return sorted(kata.symbol for kata in manifest.katas())
