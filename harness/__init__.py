"""The kata harness: manifest, loader, shared config and test helpers."""
from harness.config import Config

__all__ = ["Config"]
