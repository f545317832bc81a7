"""Tests for katas/padding/generate_padded_with_cache.py (generate_padded_with_cache), against
generate_padded and Hugging Face's generate(input_ids, attention_mask=...) with its cache."""
import pytest
import torch

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front, eos_zero_is_reached
from harness.testing.dtypes import check_caches_on_meta, check_loop_on_meta
from harness.testing.oracles import hf_generate, hf_gpt2, reference_gpt2
from harness.testing.padding import left_padded
from harness.testing.properties import check_inputs_unchanged
from harness.testing.recorders import PositionCounter

KATA = "padding.generate_padded_with_cache"
generate_padded_with_cache = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
EOS = CFG.d_vocab - 1
HINT = ("Prefill the padded prompt with its mask, then feed only the last chosen token, the mask grown by a column of "
        "ones first; the penalties see each row's real tokens only, as in generate_padded.")
OPTIONS = [
    dict(do_sample=False),
    dict(do_sample=False, repetition_penalty=2.0, frequency_penalty=0.5),
    dict(do_sample=False, frequency_penalty=1.0),  # 1.0 is the repetition penalty's off value, not this one's
    dict(do_sample=True, top_k=0),
    dict(do_sample=True, top_k=5, top_p=0.9, temperature=0.8, repetition_penalty=2.0),  # 2.0 alone: see the line above
]


def check_tokens(actual, expected, what: str):
    __tracebackhide__ = True
    check_tensor(actual, expected, kata=KATA, what=what, axes="batch total_len", hint=HINT)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("lengths", [[3, 1, 5], [1, 4]], ids=str)
def test_same_tokens_as_generate_padded(lengths, options, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=21, pad=0, device=device)
    extra = dict(eos_token_id=[EOS, 4], pad_token_id=0)
    torch.manual_seed(1)
    expected = reference("padding.generate_padded")(model, prompt, mask, 12, **extra, **options)
    torch.manual_seed(1)
    check_tokens(generate_padded_with_cache(model, prompt, mask, 12, **extra, **options), expected,
                 what=f"tokens with {options} vs generate_padded")


@pytest.mark.parametrize("lengths", [[3, 1, 5], [2, 2, 6, 1]], ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_equals_hugging_face_with_its_cache(seed, lengths, device):
    model, hf = reference_gpt2(CFG, seed, str(device)), hf_gpt2(CFG, seed, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=seed + 22, pad=EOS, device=device)
    expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=10, do_sample=False, eos_token_id=EOS, pad_token_id=EOS,
                                  repetition_penalty=1.5, use_cache=True)
    check_tokens(generate_padded_with_cache(model, prompt, mask, 10, eos_token_id=EOS, do_sample=False, repetition_penalty=1.5),
                 expected, what=f"greedy generation from prompts of lengths {lengths} vs Hugging Face's, cache on")


def test_each_step_after_the_prefill_feeds_one_token(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([4, 1], CFG.d_vocab, seed=23, pad=0, device=device)
    with PositionCounter(model) as counter:
        generate_padded_with_cache(model, prompt, mask, 5, do_sample=False)
    assert counter.calls == [4, 1, 1, 1, 1], (
        f"positions run through the model at each step: expected [4, 1, 1, 1, 1] (the padded prompt once, then one "
        f"token), got {counter.calls}. The cache holds the rest: feed it only what it has not seen.")


@pytest.mark.parametrize("every_row_padded", [False, True], ids=["a full row", "every row padded"])
@pytest.mark.parametrize("prompt_len, new", [(30, 11), (CFG.n_ctx, 1)])
def test_past_the_context_is_refused_up_front(prompt_len, new, every_row_padded, device):
    """The prompt's columns count, padding included."""
    model = reference_gpt2(CFG, 0, str(device))
    lengths = [prompt_len - 1, 1] if every_row_padded else [prompt_len, 1]
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=24, pad=0, device=device, width=prompt_len)
    check_refused_up_front(lambda: generate_padded_with_cache(model, prompt, mask, new, do_sample=False), model, prompt_len,
                           new, kata=KATA, what=f"generate_padded_with_cache with {prompt_len} prompt columns and {new} new")
    fits = generate_padded_with_cache(model, prompt[:, : CFG.n_ctx - new], mask[:, : CFG.n_ctx - new], new, do_sample=False)
    assert fits.shape[1] == CFG.n_ctx, "prompt_len + max_new_tokens == n_ctx fits exactly"


def test_leaves_its_inputs_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([3, 1], CFG.d_vocab, seed=25, pad=0, device=device)
    check_inputs_unchanged(lambda p, m: generate_padded_with_cache(model, p, m, 3, do_sample=False), prompt, mask, kata=KATA,
                           what="generate_padded_with_cache")


@pytest.mark.parametrize("seed", [0, 1])
def test_an_eos_id_of_0_ends_rows_as_generate_padded_does(seed, device):
    model = reference_gpt2(CFG, seed, str(device))
    prompt, mask = left_padded([2, 4, 1], CFG.d_vocab, seed=seed + 85, pad=5, device=device)
    torch.manual_seed(seed)
    expected = reference("padding.generate_padded")(model, prompt, mask, 12, eos_token_id=0, pad_token_id=5, do_sample=True)
    eos_zero_is_reached(expected, prompt.shape[1])
    torch.manual_seed(seed)
    check_tokens(generate_padded_with_cache(model, prompt, mask, 12, eos_token_id=0, pad_token_id=5, do_sample=True), expected,
                 what="sampled tokens with eos_token_id=0 vs generate_padded")


def test_an_eos_list_without_a_pad_id_pads_with_its_first_id_as_generate_padded(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([3, 1, 5], CFG.d_vocab, seed=21, pad=0, device=device)
    options = dict(eos_token_id=[EOS, 2], do_sample=False)  # rows end on 2, then show EOS as their pad
    expected = reference("padding.generate_padded")(model, prompt, mask, 12, **options)
    check_tokens(generate_padded_with_cache(model, prompt, mask, 12, **options), expected,
                 what="greedy tokens with an eos list and no pad_token_id (the first eos id pads) vs generate_padded")


def test_a_float64_model_generates_as_generate_padded_does(device):
    """The cache takes the model's dtype: a float32 cache under a float64 model cannot be read by its attention."""
    model = reference("model.gpt2")(CFG)
    model.load_state_dict(reference_gpt2(CFG, 3, "cpu").state_dict())
    model = model.to(device=device, dtype=torch.float64).eval()
    prompt, mask = left_padded([3, 1, 5], CFG.d_vocab, seed=13, pad=0, device=device)
    expected = reference("padding.generate_padded")(model, prompt, mask, 10, eos_token_id=EOS, do_sample=False)
    check_tensor(generate_padded_with_cache(model, prompt, mask, 10, eos_token_id=EOS, do_sample=False), expected, kata=KATA,
                 what="cached greedy generation of a float64 model vs generate_padded", axes="batch total_len",
                 hint="Make the KVCache in the model's dtype and on its device (from next(model.parameters())).")


META_CASES = [dict(do_sample=False),
              dict(do_sample=False, eos_token_id=[EOS, 2], pad_token_id=0),
              dict(top_k=0, eos_token_id=EOS, pad_token_id=0, repetition_penalty=1.3)]


@pytest.mark.parametrize("options", META_CASES, ids=["greedy", "eos list and pad", "sampled, penalty"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the loop runs until it needs to know which rows ended: an EOS
    tensor, a `finished` mask or a mask column made on the CPU fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: generate_padded_with_cache(model, prompt, torch.ones_like(prompt), 4, **options),
                       CFG, kata=KATA, what=f"cached padded generation with {options}")


def test_makes_its_cache_on_the_models_device(monkeypatch):
    """The model on the meta device: every parts.KVCache must be made there too (a cache made without
    device= is on the CPU, which a GPU run would refuse to mix with the model's keys)."""
    check_caches_on_meta(monkeypatch, lambda model, prompt: generate_padded_with_cache(model, prompt, torch.ones_like(prompt), 4, do_sample=False),
                         CFG, kata=KATA, what="cached padded generation on the meta device", forward="padded_cached_forward")
