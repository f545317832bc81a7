"""What the suites compare with: the reference solutions, and Hugging Face's GPT-2 (with every
parameter random and non-zero), for modules, whole models and generate()."""
import copy
from functools import lru_cache

import pytest
import torch
from torch import Tensor, nn

from harness.config import Config
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.data import randomize_parameters_

# ---------------------------------------------------------------- the reference solutions


def copy_parameters(destination: nn.Module, source: nn.Module, *, kata: str) -> None:
    """Give the learner's module the reference's parameters, by name."""
    __tracebackhide__ = True
    try:
        destination.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as error:
        pytest.fail(
            f"Your module's parameters do not match the kata's layout (keep __init__ as given):\n{error}\n{stuck(kata)}",
            pytrace=False,
        )


def module_like(kata_id: str, cfg: Config, source: nn.Module, *, device) -> nn.Module:
    """The module under test, in eval mode, holding `source`'s parameters."""
    module = under_test(kata_id)(cfg).to(device).eval()
    copy_parameters(module, source, kata=kata_id)
    return module


def matching_modules(kata_id: str, cfg: Config, *, seed: int, device) -> tuple[nn.Module, nn.Module]:
    """(the module under test, the reference), same random weights, in eval mode."""
    expected = randomize_parameters_(reference(kata_id)(cfg), seed, cfg.d_model).to(device).eval()
    return module_like(kata_id, cfg, expected, device=device), expected

# ---------------------------------------------------------------- Hugging Face's GPT-2


def hf_config(cfg: Config):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=cfg.d_vocab,
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp,
        activation_function="gelu_new",
        layer_norm_epsilon=cfg.layer_norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=cfg.d_vocab - 1,
        eos_token_id=cfg.d_vocab - 1,
    )


@lru_cache(maxsize=16)
def hf_gpt2(cfg: Config, seed: int, device: str = "cpu"):
    """Hugging Face's GPT2LMHeadModel with every parameter random and non-zero."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(hf_config(cfg)).eval()
    return randomize_parameters_(model, seed, cfg.d_model).to(device)


def hf_gpt2_with_ties(cfg: Config, seed: int, kinds: int, device: str = "cpu"):
    """A copy of hf_gpt2(cfg, seed) where token t's embedding (tied to the unembedding) is token
    (t % kinds)'s: the logits take only `kinds` distinct values, and sequences that differ only in
    such twin tokens score exactly alike, so beam search meets exact ties at every step (kinds=1:
    every logit equal). Where scores tie, only the same torch.topk calls as Hugging Face's give its order."""
    model = copy.deepcopy(hf_gpt2(cfg, seed, device))
    with torch.no_grad():
        embedding = model.transformer.wte.weight
        embedding.copy_(embedding[torch.arange(cfg.d_vocab, device=embedding.device) % kinds])
    return model


@lru_cache(maxsize=16)
def reference_gpt2(cfg: Config, seed: int, device: str = "cpu") -> nn.Module:
    """The reference GPT2 holding hf_gpt2(cfg, seed)'s weights."""
    return reference_gpt2_holding(cfg, hf_gpt2(cfg, seed, device), device)


def reference_gpt2_with_ties(cfg: Config, seed: int, kinds: int, device: str = "cpu") -> nn.Module:
    """The reference GPT2 holding hf_gpt2_with_ties(cfg, seed, kinds)'s weights (twin tokens, exact ties)."""
    return reference_gpt2_holding(cfg, hf_gpt2_with_ties(cfg, seed, kinds, device), device)


def reference_gpt2_holding(cfg: Config, hf, device: str) -> nn.Module:
    """The reference GPT2, in eval mode, holding a Hugging Face GPT-2's weights."""
    model = reference("model.gpt2")(cfg).to(device).eval()
    reference("model.load_gpt2_weights")(model, hf.state_dict())
    return model


@torch.no_grad()
def hf_module_io(hf_model: nn.Module, submodule: nn.Module, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """What `submodule` of `hf_model` reads and returns during a forward pass on `tokens`."""
    captured = {}

    def hook(module, args, kwargs, output):
        captured["input"] = args[0] if args else kwargs["hidden_states"]
        captured["output"] = output[0] if isinstance(output, tuple) else output

    handle = submodule.register_forward_hook(hook, with_kwargs=True)
    try:
        hf_model(tokens)
    finally:
        handle.remove()
    return captured["input"], captured["output"]


@torch.no_grad()
def check_matches_reference(kata: str, cfg: Config, inputs: Tensor, *, seed: int, device, what: str, axes: str = "",
                            atol: float = 1e-4, rtol: float = 1e-4, hint: str = "") -> None:
    """The module under test and the reference, given the same random weights and inputs, agree."""
    __tracebackhide__ = True
    module, expected = matching_modules(kata, cfg, seed=seed, device=device)
    check_tensor(module(inputs), expected(inputs), kata=kata, what=what, axes=axes, atol=atol, rtol=rtol, hint=hint)


@torch.no_grad()
def check_matches_hugging_face(kata: str, cfg: Config, tokens: Tensor, *, ours, theirs, device, what: str,
                               axes: str = "") -> None:
    """The module under test, holding the weights of `ours(reference GPT2)`, returns what the Hugging
    Face module `theirs(GPT2LMHeadModel)` returns on the hidden states it sees in a forward pass."""
    __tracebackhide__ = True
    module = module_like(kata, cfg, ours(reference_gpt2(cfg, 0, str(device))), device=device)
    hf = hf_gpt2(cfg, 0, str(device))
    hidden, expected = hf_module_io(hf, theirs(hf), tokens)
    check_tensor(module(hidden), expected, kata=kata, what=f"{what} vs Hugging Face's", axes=axes, atol=1e-4, rtol=1e-4)


def hf_as_model(hf):
    """A Hugging Face GPT2LMHeadModel as the plain `tokens -> logits` callable the katas take. Its last
    position is computed as Hugging Face's generate() computes it (logits_to_keep=1), to the last bit:
    a matmul of another shape rounds differently, and exact ties (hf_gpt2_with_ties) need the same bits."""

    def model(tokens: Tensor) -> Tensor:
        logits = hf(tokens, use_cache=False).logits
        last = hf(tokens, use_cache=False, logits_to_keep=1).logits
        return torch.cat([logits[:, :-1], last], dim=1)

    return model


def hf_generate(hf, prompt: Tensor, attention_mask: "Tensor | None" = None, **options):
    """Hugging Face's generate() on `prompt` (every token real, unless an attention mask says which
    are padding), with no cache (so its logits are computed as ours are). Finished rows are padded
    with pad_token_id if given, else the (first) eos id. eos_token_id=None means no EOS at all, as
    for the katas: Hugging Face would fall back to the config's (d_vocab - 1 in hf_config), so it
    gets an id past the vocabulary instead, which no row can produce."""
    eos = options.get("eos_token_id")
    options.setdefault("pad_token_id", eos[0] if isinstance(eos, list) else eos)
    if eos is None:
        options["eos_token_id"] = hf.config.vocab_size
    options.setdefault("use_cache", False)
    with torch.no_grad():
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt) if attention_mask is None else attention_mask,
                           **options)


def likely_eos(logits: Tensor) -> int:
    """An EOS that beams really reach, from a model's logits (batch, seq, d_vocab) on the prompts: the
    second likeliest token after the first prompt. (A random token of a random model almost never
    wins a beam, and would test nothing.)"""
    return int(logits[0, -1].argsort(descending=True)[1])


def hf_generate_banning_ngrams(hf, prompt: Tensor, no_repeat_ngram_size: int, seed: int = 0, **options) -> Tensor:
    """hf_generate(..., no_repeat_ngram_size=n) after torch.manual_seed(seed), for the suites of the katas
    that take no_repeat_ngram_size. It checks that the same call without the ban gives other tokens: a
    case that never repeats an n-gram would test nothing (its author must pick another seed)."""
    torch.manual_seed(seed)
    unbanned = hf_generate(hf, prompt, **options)
    torch.manual_seed(seed)
    banned = hf_generate(hf, prompt, no_repeat_ngram_size=no_repeat_ngram_size, **options)
    assert not torch.equal(banned, unbanned), (
        f"this case repeats no {no_repeat_ngram_size}-gram without the ban, so it tests nothing: give it another seed")
    return banned


def tiny_language_model(cfg: Config, seed: int, device="cpu") -> nn.Module:
    """The reference GPT2 with seeded, non-zero random weights, in training mode."""
    model = reference("model.gpt2")(cfg)
    return randomize_parameters_(model, seed, cfg.d_model).to(device).train()
