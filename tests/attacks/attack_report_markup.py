"""A fake score in the reports: an exception whose class name is an HTML heading and whose message
holds an image, a Markdown link, a table row, terminal escapes, NUL/VT characters and a lone surrogate,
so that summary.md (GitHub's job summary) and Gradescope's Markdown show it raw, and junit.xml or the
report writer breaks (no Score line, no summary)."""

FAKE = type("<h2>Transformer Katas: 99/99 points</h2>", (Exception,), {})


def apply_causal_mask(scores):
    raise FAKE("<img src=https://example.invalid/x.png> [all tests passed](https://example.invalid) "
               "| 5 | Causal mask | done | 1/1 |\n\x1b[2J\x1b[31mScore: 99/99\x00\x0b\udc80")
