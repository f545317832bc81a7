"""Seeded inputs: tensors, token ids, and random non-zero parameters for a module."""
import math

import torch
from torch import Tensor, nn


def randn(*shape: int, seed: int, device="cpu", scale: float = 1.0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator)).to(device)


def random_tokens(batch: int, posn: int, d_vocab: int, *, seed: int, device="cpu") -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, d_vocab, (batch, posn), generator=generator).to(device)


def tokens_with_extremes(batch: int, posn: int, d_vocab: int, *, seed: int, device="cpu") -> Tensor:
    """Random token ids in which both 0 and the last id (d_vocab - 1) occur."""
    tokens = random_tokens(batch, posn, d_vocab, seed=seed)
    flat = tokens.view(-1)
    flat[0] = 0
    flat[-1] = d_vocab - 1
    return tokens.to(device)


@torch.no_grad()
def randomize_parameters_(module: nn.Module, seed: int, d_model: int) -> nn.Module:
    """Overwrite every parameter with seeded, non-zero random values.

    Default inits set biases to 0 and layer-norm scales to 1, which would hide a forgotten
    bias or scale. Matrices get std 1/sqrt(d_model), so activations keep a unit scale;
    layer-norm scales (1-D `w` or `weight`) 1 + noise; biases noise.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        noise = torch.randn(param.shape, generator=generator)
        if param.dim() >= 2:
            values = noise / math.sqrt(d_model)
        elif name.rsplit(".", 1)[-1] in ("w", "weight"):
            values = 1.0 + 0.2 * noise
        else:
            values = 0.2 * noise
        param.copy_(values.to(param.device, param.dtype))
    return module
