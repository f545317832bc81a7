"""Wrappers that record how a model is called: the positions each forward pass embeds (the
key-value cache suites) and the mode and autograd state of each call (the training suites); and
the device of each KV cache the code under test makes."""
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class PositionCounter:
    """Counts the positions a GPT2 embeds, call by call (one entry per forward pass), through a
    hook on model.embed: how a test sees whether generation really feeds only the new tokens."""

    def __init__(self, model: nn.Module):
        self.calls: list[int] = []
        self._handle = model.embed.register_forward_hook(lambda module, args, output: self.calls.append(args[0].shape[1]))

    def __enter__(self) -> "PositionCounter":
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


@dataclass(frozen=True)
class ForwardCall:
    training: bool  # the model's mode during the call
    grad_enabled: bool  # whether autograd was recording
    batch: int


class ModeRecorder(nn.Module):
    """Wraps a model and records, for every forward call, its mode and whether autograd was on:
    how the training suites see that evaluation runs in eval mode under no_grad, and training not."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[ForwardCall] = []

    def forward(self, tokens: Tensor) -> Tensor:
        self.calls.append(ForwardCall(self.training, torch.is_grad_enabled(), tokens.shape[0]))
        return self.model(tokens)


def record_cache_devices(monkeypatch, kata: str, forward: str = "cached_forward") -> list[str]:
    """Wrap parts.<forward> (cached_forward, padded_cached_forward), where the code under test calls it
    (its worker's when isolated), to record the device of the KV cache it is handed, then run it: the
    list it returns fills as the test runs. A cache made without device= is on the CPU whatever the
    model's device. (Wrapping parts.KVCache itself would break the type hints that name it.)"""
    from harness import parts
    from harness.testing import as_the_kata_sees

    seen_parts = as_the_kata_sees(kata, parts)
    real = getattr(seen_parts, forward)
    devices = []

    def recording_forward(*args, **kwargs):
        cache = kwargs["cache"] if "cache" in kwargs else args[-1]
        devices.append(str(cache.keys.device))
        return real(*args, **kwargs)

    monkeypatch.setattr(seen_parts, forward, recording_forward)
    return devices


class SearchRecorder:
    """A model (any callable from tokens to logits) that keeps the tokens of every call: the beams
    a search asks about, step by step, so that two searches can be compared step by step."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, tokens: Tensor) -> Tensor:
        self.calls.append(tokens.detach().cpu().clone())
        return self.model(tokens)


def where_searches_part(actual: list[Tensor], expected: list[Tensor], prompt_len: int) -> str:
    """In words, the first step at which a search fed the model other beams than the reference's
    (both recorded by a SearchRecorder), or stopped at another step; prompt by prompt."""
    for prompt, (mine, theirs) in enumerate(zip(_per_prompt(actual, prompt_len), _per_prompt(expected, prompt_len))):
        for step, (my_beams, their_beams) in enumerate(zip(mine, theirs), start=1):
            if my_beams.shape != their_beams.shape or not torch.equal(my_beams, their_beams):
                return (f"Your search parts from the reference's at step {step} of prompt {prompt}: the beams it fed the "
                        f"model (generated tokens) were {my_beams[:, prompt_len:].tolist()}, the reference's "
                        f"{their_beams[:, prompt_len:].tolist()}. Look at what the step before decided.")
        if len(mine) < len(theirs):
            return (f"On prompt {prompt}, your search stopped after step {len(mine)}, the reference's went on to step "
                    f"{len(theirs)} (with the same beams until then): check when the search may stop.")
        if len(mine) > len(theirs):
            return (f"On prompt {prompt}, your search went on past the reference's last step ({len(theirs)}) to step "
                    f"{len(mine)}, with the same beams until then: check when the search may stop.")
    return ("Your search fed the model the same beams at every step as the reference's: the difference is in what it "
            "keeps and returns (the scores given to the pool, the length penalty, the sequences returned).")


def _per_prompt(calls: list[Tensor], prompt_len: int) -> list[list[Tensor]]:
    """A search's calls of the model, prompt by prompt: each prompt's first step feeds the prompt alone."""
    prompts: list[list[Tensor]] = []
    for tokens in calls:
        if tokens.shape[1] == prompt_len or not prompts:
            prompts.append([])
        prompts[-1].append(tokens)
    return prompts
