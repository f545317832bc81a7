"""python -m harness COMMAND: the same commands as `kata` (see harness/cli.py).

    progress (or status)  run every kata's suite against katas/ and show what is done, and what is next
    hint KATA [--level N] the hints of a kata, one level at a time
    stub KATA             print a kata's stub, made from its reference
    check-stubs           the shipped stubs are untouched and fail every suite (CI)
    check-mutants [KATA...] every known-wrong solution fails its suite (CI)
    train [OPTIONS]       train a small GPT-2 on text (also under torchrun); see harness/train.py
"""
import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m harness"))
