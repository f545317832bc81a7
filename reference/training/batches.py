"""One epoch of shuffled batches.

Training takes a few windows at a time (a batch) and visits them in a new random order each
epoch, so that the batches are not the corpus in reading order. One epoch uses every window
exactly once: shuffle the window indices, then cut them into batches of batch_size. The last
batch holds what is left (it may be smaller); nothing is dropped and nothing repeats.

The shuffle draws from `generator` (torch.randperm(..., generator=generator)), never from
torch's global random state, so that the order is reproducible: the same seed gives the same
batches, and two processes seeded alike agree without talking to each other.
"""
import torch
from jaxtyping import Int
from torch import Tensor


def shuffled_batches(
    windows: Int[Tensor, "n_windows n_ctx"], batch_size: int, generator: torch.Generator
) -> list[Int[Tensor, "_ n_ctx"]]:
    """windows in a random order (drawn from generator), cut into batches of batch_size."""
    order = torch.randperm(len(windows), generator=generator).to(windows.device)
    return list(windows[order].split(batch_size))
