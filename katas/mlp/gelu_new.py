"""GELU as GPT-2 computes it: the tanh approximation (Hugging Face's "gelu_new").

GELU(x) = x * Phi(x), where Phi is the standard normal CDF. GPT-2 was trained with this
approximation of it, and its weights expect exactly this function:

    gelu_new(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))

It differs from the exact (erf) GELU by up to about 5e-4: enough to matter.
"""
import math

import torch
from jaxtyping import Float
from torch import Tensor


def gelu_new(x: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Element-wise tanh-approximate GELU; the output has x's shape and dtype."""
    raise NotImplementedError
