"""Test helpers for the padding katas: left-padded batches and Hugging Face's answers on them."""
import torch
from torch import Tensor

from harness.testing.data import random_tokens


def left_padded(lengths: "list[int]", d_vocab: int, *, seed: int, pad: int, device="cpu",
                width: "int | None" = None) -> "tuple[Tensor, Tensor]":
    """Random prompts of these lengths, left-padded with `pad` to the longest (or to `width`, so that
    every row is padded): (tokens, attention_mask)."""
    width = width or max(lengths)
    tokens = random_tokens(len(lengths), width, d_vocab, seed=seed, device=device)
    mask = torch.zeros(len(lengths), width, dtype=torch.long, device=device)
    for row, length in enumerate(lengths):
        mask[row, width - length :] = 1
    return tokens.masked_fill(mask == 0, pad), mask


def real_part(tokens: Tensor, mask: Tensor, row: int) -> Tensor:
    """Row `row`'s real tokens, as a (1, n) batch."""
    return tokens[row, mask[row] == 1][None]


def hf_positions(hf, attention_mask: Tensor) -> Tensor:
    """The position ids Hugging Face's generate() gives a padded prompt (transformers 5)."""
    return hf._prepare_position_ids_for_generation(attention_mask, {"attention_mask": attention_mask})


def hf_padded_logits(hf, tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """Hugging Face's GPT-2 logits on a padded batch, with the positions its generate() uses."""
    with torch.no_grad():
        return hf(tokens, attention_mask=attention_mask, position_ids=hf_positions(hf, attention_mask), use_cache=False).logits
