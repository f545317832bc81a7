"""Plumbing shared by the beam-search katas (not a kata itself)."""
import torch
from torch import Tensor


def pad_and_stack(results: list, eos_token_id: "int | None") -> tuple[Tensor, Tensor]:
    """Per prompt, a list of (score, sequence): all sequences as one tensor (padded with EOS, or
    -1 without one, up to the longest) and their scores."""
    longest = max(len(sequence) for entries in results for _, sequence in entries)
    pad = eos_token_id if eos_token_id is not None else -1
    sequences = [torch.nn.functional.pad(sequence, (0, longest - len(sequence)), value=pad)
                 for entries in results for _, sequence in entries]
    scores = [score for entries in results for score, _ in entries]
    stacked = torch.stack(sequences)
    return stacked, torch.tensor(scores, device=stacked.device)  # float32, beside the sequences
