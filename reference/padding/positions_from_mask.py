"""Positions in a left-padded batch: count only the real tokens.

GPT-2 learnt W_pos for text that starts at position 0. In a left-padded row the first real
token sits at some later column, yet it must still get W_pos[0], the next one W_pos[1], and
so on: a row's positions count its real tokens, not its columns.

    attention_mask [[0, 0, 1, 1, 1],     positions [[0, 0, 0, 1, 2],
                    [1, 1, 1, 1, 1]]                [0, 1, 2, 3, 4]]

Padding positions get 0, as Hugging Face's generate() computes them (transformers 5:
`_prepare_position_ids_for_generation`; some older versions used 1). No real token ever sees
a padding position, so that value changes none of the real tokens' logits; it must only be a
valid index into W_pos.
"""
from jaxtyping import Int
from torch import Tensor


def positions_from_mask(attention_mask: Int[Tensor, "batch posn"]) -> Int[Tensor, "batch posn"]:
    """Each position's index among its row's real tokens; 0 on padding positions.

    attention_mask: 1 for a real token, 0 for padding (left padding, but any pattern works).
    returns: a new integer tensor (torch.long) of the same shape.
    """
    positions = attention_mask.long().cumsum(dim=-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)
