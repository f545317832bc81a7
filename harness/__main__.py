"""python -m harness COMMAND: `kata` without its script (on Windows, or before the venv is on PATH).

The same commands, from the same table (harness/commands/cli.py's COMMANDS): `python -m harness --help`
lists all of them. `torchrun -m harness train` runs `kata train` on many processes.
"""
import sys

from harness.commands.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m harness"))
