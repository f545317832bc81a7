"""The training loop: AdamW over shuffled batches, with a held-out loss now and then.

    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = a torch.Generator seeded with `seed` (for the shuffles)
    model.train()                     the model may arrive in eval mode (a loaded checkpoint does)
    repeat epochs of parts.shuffled_batches(train_windows, batch_size, generator):
        loss = parts.train_step(model, optimizer, batch)
        append loss.item() to log.train_losses
        after every eval_every steps, and after the last step:
            log.eval_losses[steps done] = parts.evaluate(model, eval_windows, batch_size)
        call on_step(log) if given
    stop after exactly `steps` steps, which may end in the middle of an epoch

Batches go to the device the model's parameters are on. With the same seed (and the same
initial model) two runs give the same losses. Under torchrun, the harness hands this loop a
DistributedDataParallel model and each process's share of the windows: the loop is the same.
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from jaxtyping import Int
from torch import Tensor, nn

from harness import parts


@dataclass
class TrainingLog:
    train_losses: list[float] = field(default_factory=list)  # one per step, in order
    eval_losses: dict[int, float] = field(default_factory=dict)  # steps done -> held-out loss


def train(
    model: nn.Module,
    train_windows: Int[Tensor, "n_train n_ctx"],
    eval_windows: Int[Tensor, "n_eval n_ctx"],
    *,
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    eval_every: int = 100,
    seed: int = 0,
    on_step: "Callable[[TrainingLog], None] | None" = None,
) -> TrainingLog:
    """Train for exactly `steps` steps; the log of training and held-out losses."""
    raise NotImplementedError
