"""`python -m harness.mutation`: kept where the README first put it (harness.authoring.mutation)."""
import sys

from harness.authoring.mutation import main

if __name__ == "__main__":
    sys.exit(main())
