"""`from harness.notebook import check`: kept where the README first put it (harness.commands.notebook)."""
from harness.commands.notebook import check

__all__ = ["check"]
