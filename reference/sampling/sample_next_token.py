"""Choosing the next token: every sampling kata, in Hugging Face's order.

    1. repetition penalty (skipped when 1.0)        parts.apply_repetition_penalty
    2. frequency penalty (skipped when 0.0)         parts.apply_frequency_penalty
    3. temperature (skipped when 1.0)               parts.apply_temperature
    4. top-k (skipped when 0)                       parts.top_k_filter
    5. top-p (skipped when 1.0)                     parts.top_p_filter
    6. softmax, then torch.multinomial(probs, 1, generator=generator)

With do_sample=False it is greedy (parts.greedy_next_token) after steps 1 and 2. The order
matters: the temperature comes before the filters, because top-p depends on how peaked the
distribution is. `tokens` is the whole sequence so far, the prompt included. With
generator=None, torch.multinomial uses the global random state, exactly as Hugging Face's
generate(do_sample=True) does, so the same torch.manual_seed gives the same tokens.
"""
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import parts


def sample_next_token(
    logits: Float[Tensor, "batch d_vocab"],
    tokens: Int[Tensor, "batch seq"],
    *,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    frequency_penalty: float = 0.0,
    generator: "torch.Generator | None" = None,
) -> Int[Tensor, " batch"]:
    """The next token of every row, chosen as the module docstring describes."""
    if repetition_penalty != 1.0:
        logits = parts.apply_repetition_penalty(logits, tokens, repetition_penalty)
    if frequency_penalty != 0.0:
        logits = parts.apply_frequency_penalty(logits, tokens, frequency_penalty)
    if not do_sample:
        return parts.greedy_next_token(logits)
    if temperature != 1.0:
        logits = parts.apply_temperature(logits, temperature)
    if top_k > 0:
        logits = parts.top_k_filter(logits, top_k)
    if top_p < 1.0:
        logits = parts.top_p_filter(logits, top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
