"""Given to the beam-search katas (not a kata itself): the pool of finished sequences, kept exactly
as Hugging Face keeps it, its stopping rules, and the stacking of the results.

The katas write the search (beam_step: which candidates go on; beam_search: the loop, the length
penalty); what is here is bookkeeping whose every detail (tie order, "never") only matters to
equal Hugging Face's generate() bit for bit.
"""
import torch
from torch import Tensor

NEVER = -1.0e9  # the score of an empty slot, and what is added to a candidate that may not enter


class FinishedPool:
    """The num_beams best finished sequences of one prompt, best first, with their scores.

    add() offers it a step's candidates, their scores already length-normalised, and which of them
    finished. Hugging Face keeps num_beams slots that start empty at -1e9 (an empty slot holds the
    prompt: when nothing can finish, the prompt is returned at -1e9, as generate() returns it) and
    merges them with the candidates by one torch.topk over [slots, candidates] side by side, slots
    first, -1e9 on every candidate that did not finish: with equal scores only that tensor gives
    Hugging Face's order, so it is kept here exactly so.
    """

    def __init__(self, prompt: Tensor, num_beams: int, *, length_penalty: float, early_stopping: "bool | str",
                 max_new_tokens: int):
        self.num_beams, self.length_penalty = num_beams, length_penalty
        self.early_stopping, self.max_new_tokens = early_stopping, max_new_tokens
        self.sequences: list[Tensor] = [prompt] * num_beams
        self.scores = torch.full((num_beams,), NEVER, device=prompt.device)
        self.filled = torch.zeros(num_beams, dtype=torch.bool, device=prompt.device)

    def add(self, candidates: Tensor, scores: Tensor, finished: Tensor) -> None:
        """Offer every candidate of a step (all of them, in beam_step's order), with its normalised
        score; only those marked finished can enter."""
        merged = torch.cat([self.scores, scores + ~finished * NEVER])
        keep = torch.topk(merged, self.num_beams).indices
        entries = self.sequences + list(candidates)
        self.sequences = [entries[index] for index in keep.tolist()]
        self.scores, self.filled = merged[keep], torch.cat([self.filled, finished])[keep]

    @property
    def full(self) -> bool:
        """Every slot holds a finished sequence."""
        return bool(self.filled.all())

    def is_done(self, best_live_score: Tensor, generated: int) -> bool:
        """Whether the search can stop after `generated` new tokens, the best live beam scoring
        `best_live_score` (a raw sum of log-probabilities), by Hugging Face's rules:

        - nothing is done before the pool is full;
        - early_stopping=True, or a single beam (Hugging Face runs greedy search then): a full pool is done;
        - False: done when the best live beam, normalised at its current length, cannot beat the
          pool's worst (a heuristic: with length_penalty > 0 a longer beam could still score better);
        - "never": the same, but normalised at max_new_tokens when length_penalty > 0 (the best a
          live beam could ever reach), so that nothing better is given up.
        """
        if not self.full:
            return False
        if self.early_stopping is True or self.num_beams == 1:  # "never" is truthy: compare with True
            return True
        length = self.max_new_tokens if self.early_stopping == "never" and self.length_penalty > 0 else generated
        return bool(best_live_score / length**self.length_penalty <= self.scores.min())

    def best(self, count: int) -> list[tuple[float, Tensor]]:
        """The `count` best (score, sequence) pairs, best first."""
        return list(zip(self.scores.tolist(), self.sequences))[:count]


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
