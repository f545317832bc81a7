"""What crosses between a kata's checker and its worker as the real thing rather than a stand-in:
the classes shared on both sides, the reference modules rebuilt in the worker, and the reference
files staged for it. Used by both processes (harness.checker.isolation, harness.sandbox.worker)."""
from harness import manifest
from harness.manifest import Kata


def shareable_classes(kata: Kata, load) -> dict:
    """The classes (not modules) of the solutions `kata` builds on: their objects are shared with
    its worker (a KVCache handed to cached_attention is a KVCache there too, not a stand-in)."""
    from torch import nn

    classes = {}
    for kata_id in sorted(manifest.dependency_closure(kata)):
        value = load(manifest.get(kata_id))
        if isinstance(value, type) and not issubclass(value, nn.Module):
            classes[kata_id] = value
    return classes


MODEL = "model.gpt2"  # the model that tests hand to generation and training katas


def rebuildable_katas(kata: Kata) -> "set[str]":
    """The module katas whose reference objects are rebuilt in `kata`'s worker when a test hands
    them over (a reference GPT2 given to generate): the model and its parts, except `kata` itself
    and any that builds on it (those stay in the checker, behind a stand-in)."""
    try:
        model = manifest.get(MODEL)
    except KeyError:
        return set()
    candidates = {model.id} | manifest.dependency_closure(model)
    return {kata_id for kata_id in candidates
            if kata_id != kata.id and kata.id not in manifest.dependency_closure(manifest.get(kata_id))}


def staged_katas(kata: Kata) -> "set[str]":
    """The reference solutions copied into `kata`'s worker: what it builds on, and what rebuilt
    modules run. Never its own, nor any kata that builds on it."""
    return manifest.dependency_closure(kata) | rebuildable_katas(kata)


def rebuildable_classes(kata: Kata, load) -> dict:
    from torch import nn

    classes = {}
    for kata_id in sorted(rebuildable_katas(kata)):
        value = load(manifest.get(kata_id))
        if isinstance(value, type) and issubclass(value, nn.Module):
            classes[kata_id] = value
    return classes
