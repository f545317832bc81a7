"""Hypothesis strategies (configs, sizes, sampling inputs, cache chunks) and the named configs."""
from dataclasses import dataclass

import hypothesis.strategies as st
import torch
from torch import Tensor

from harness.config import Config

NAMED_CONFIGS = {
    "tiny": Config(d_model=8, n_heads=2, n_layers=1, d_vocab=11, n_ctx=8),
    "one_head": Config(d_model=12, n_heads=1, n_layers=2, d_vocab=17, n_ctx=10),
    "many_heads": Config(d_model=24, n_heads=4, n_layers=2, d_vocab=29, n_ctx=16),
}


@st.composite
def configs(draw, max_layers: int = 2) -> Config:
    n_heads = draw(st.integers(1, 4))
    d_head = draw(st.integers(1, 8))
    return Config(
        d_model=n_heads * d_head,
        n_heads=n_heads,
        n_layers=draw(st.integers(1, max_layers)),
        d_vocab=draw(st.integers(2, 40)),
        n_ctx=draw(st.integers(1, 12)),
    )


@st.composite
def configs_and_sizes(draw, max_layers: int = 2) -> tuple[Config, int, int]:
    """A config, a batch size and a sequence length (1 included) that fits its context."""
    cfg = draw(configs(max_layers))
    return cfg, draw(st.integers(1, 3)), draw(st.integers(1, cfg.n_ctx))


seeds = st.integers(0, 2**16)


@dataclass(frozen=True)
class AttentionSizes:
    batch: int
    query_pos: int
    key_pos: int
    n_heads: int
    d_head: int


@st.composite
def attention_sizes(draw, square: bool = True) -> AttentionSizes:
    """Sizes for the attention katas; query_pos == key_pos unless square=False."""
    query_pos = draw(st.integers(1, 8))
    return AttentionSizes(
        batch=draw(st.integers(1, 3)),
        query_pos=query_pos,
        key_pos=query_pos if square else draw(st.integers(1, 8)),
        n_heads=draw(st.integers(1, 4)),
        d_head=draw(st.integers(1, 8)),
    )


@dataclass(frozen=True)
class SamplingInputs:
    logits: Tensor  # (batch, d_vocab)
    tokens: Tensor  # (batch, seq): the sequence so far, with repeats


@st.composite
def sampling_inputs(draw, device="cpu") -> SamplingInputs:
    """Logits (sometimes with ties: small integers) and token sequences with repeated tokens."""
    batch, d_vocab, seq = draw(st.integers(1, 4)), draw(st.integers(2, 30)), draw(st.integers(1, 10))
    seed, ties = draw(seeds), draw(st.booleans())
    generator = torch.Generator().manual_seed(seed)
    if ties:
        logits = torch.randint(-3, 4, (batch, d_vocab), generator=generator).float()
    else:
        logits = 3.0 * torch.randn(batch, d_vocab, generator=generator)
    tokens = torch.randint(0, min(d_vocab, 6), (batch, seq), generator=generator)
    return SamplingInputs(logits.to(device), tokens.to(device))


@st.composite
def prefill_and_chunks(draw, n_ctx: int, max_chunk: int = 4) -> tuple[int, list[int]]:
    """A prompt length and the sizes of the chunks fed after it, all fitting in n_ctx together."""
    prompt_len = draw(st.integers(1, n_ctx // 2))
    chunks = draw(st.lists(st.integers(1, max_chunk), min_size=1, max_size=6))
    fitting = [size for number, size in enumerate(chunks) if prompt_len + sum(chunks[: number + 1]) <= n_ctx]
    return prompt_len, fitting or [1]
