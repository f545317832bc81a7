"""Tests for katas/padding/generate_padded.py (generate_padded), against Hugging Face's
generate(input_ids, attention_mask=...) and against each prompt generated alone."""
import pytest
import torch

from harness.config import Config
from harness.testing import reference, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front, eos_zero_is_reached
from harness.testing.dtypes import check_loop_on_meta
from harness.testing.oracles import hf_generate, hf_gpt2, reference_gpt2
from harness.testing.padding import left_padded, real_part
from harness.testing.properties import check_inputs_unchanged

KATA = "padding.generate_padded"
generate_padded = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
EOS = CFG.d_vocab - 1  # Hugging Face's config says so too (harness.testing.hf_config)
LENGTHS = [[3, 1, 5], [1, 4], [2, 2, 6, 1]]
HINT = ("Each step: parts.padded_forward on every token so far with the mask so far, logits of the last position, "
        "the penalties on each row's real tokens, parts.sample_next_token, then a column of ones on the mask.")


def models(seed: int, device):
    return reference_gpt2(CFG, seed, str(device)), hf_gpt2(CFG, seed, str(device))


def check_tokens(actual, expected, what: str, hint: str = HINT):
    __tracebackhide__ = True
    check_tensor(actual, expected, kata=KATA, what=what, axes="batch total_len", hint=hint)


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_hugging_face(seed, lengths, device):
    model, hf = models(seed, device)
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=seed + 40, pad=EOS, device=device)
    expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=10, do_sample=False, eos_token_id=EOS, pad_token_id=EOS)
    check_tokens(generate_padded(model, prompt, mask, 10, eos_token_id=EOS, do_sample=False), expected,
                 what=f"greedy generation from prompts of lengths {lengths}, vs Hugging Face")


# 2.0 and 1.0: each is another option's value for "off" (a guard that tests the wrong one skips it here).
PENALTIES = [dict(), dict(repetition_penalty=2.0), dict(frequency_penalty=1.0), dict(repetition_penalty=1.5, frequency_penalty=0.5)]


@pytest.mark.parametrize("options", PENALTIES, ids=str)
@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_each_row_continues_as_its_prompt_alone(lengths, options, device):
    model = reference_gpt2(CFG, 3, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=50, pad=0, device=device)
    tokens = generate_padded(model, prompt, mask, 8, do_sample=False, **options)
    for row in range(len(lengths)):
        alone = reference("sampling.generate")(model, real_part(prompt, mask, row), 8, do_sample=False, **options)
        check_tokens(tokens[row : row + 1, -8:], alone[:, -8:],
                     what=f"the 8 new tokens of row {row} (a prompt of {lengths[row]} tokens left-padded to {max(lengths)})",
                     hint=f"With {options or 'no options'}, a padded row must continue exactly as its prompt alone would: the padding "
                          "is invisible, to the attention, the positions and the penalties.")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_repetition_penalty_ignores_the_padding_as_hugging_face_does(seed, device):
    model, hf = models(seed, device)
    prompt, mask = left_padded([4, 1, 2], CFG.d_vocab, seed=seed + 60, pad=EOS, device=device)
    expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=10, do_sample=False, eos_token_id=EOS, pad_token_id=EOS,
                                  repetition_penalty=3.0)
    check_tokens(generate_padded(model, prompt, mask, 10, eos_token_id=EOS, do_sample=False, repetition_penalty=3.0), expected,
                 what="greedy generation with repetition_penalty=3.0 vs Hugging Face",
                 hint="Hugging Face penalises the ids of a row's real tokens only, not its left padding: apply the "
                      "penalties row by row, on each row's real tokens.")


SAMPLING = [dict(top_k=0), dict(top_k=4, temperature=0.8), dict(top_k=0, top_p=0.8, repetition_penalty=1.5)]


@pytest.mark.parametrize("options", SAMPLING, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_with_the_same_seed_equals_hugging_face(seed, options, device):
    model, hf = models(seed, device)
    prompt, mask = left_padded([5, 1, 3, 2], CFG.d_vocab, seed=seed + 70, pad=EOS, device=device)
    torch.manual_seed(seed)
    expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=12, do_sample=True, eos_token_id=EOS, pad_token_id=EOS, **options)
    torch.manual_seed(seed)
    actual = generate_padded(model, prompt, mask, 12, eos_token_id=EOS, do_sample=True, **options)
    check_tokens(actual, expected, what=f"sampled generation with {options} vs Hugging Face (top_k=0 there means none, "
                 "as here by default)",
                 hint="Sample every row at every step, finished ones too, then overwrite those with the pad id.")


@pytest.mark.parametrize("seed", [0, 1])
def test_an_eos_id_of_0_ends_rows_as_in_hugging_face(seed, device):
    model, hf = models(seed, device)
    prompt, mask = left_padded([2, 4, 1], CFG.d_vocab, seed=seed + 85, pad=5, device=device)
    torch.manual_seed(seed)
    expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=12, do_sample=True, top_k=0, eos_token_id=0, pad_token_id=5)
    eos_zero_is_reached(expected, prompt.shape[1])
    torch.manual_seed(seed)
    actual = generate_padded(model, prompt, mask, 12, eos_token_id=0, pad_token_id=5, do_sample=True)
    check_tokens(actual, expected, what="sampled generation with eos_token_id=0, pad_token_id=5 vs Hugging Face",
                 hint="0 is a real token id: test `eos_token_id is not None`, never its truthiness.")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_pad_token_other_than_eos_and_a_list_of_eos_ids_equal_hugging_face(seed, device):
    model, hf = models(seed, device)
    prompt, mask = left_padded([1, 3, 4], CFG.d_vocab, seed=seed + 80, pad=0, device=device)
    for eos in ([EOS, 2, 5], 4):
        torch.manual_seed(seed)
        expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=10, do_sample=True, top_k=0, eos_token_id=eos, pad_token_id=0)
        torch.manual_seed(seed)
        actual = generate_padded(model, prompt, mask, 10, eos_token_id=eos, pad_token_id=0, do_sample=True)
        check_tokens(actual, expected, what=f"sampled generation with eos_token_id={eos}, pad_token_id=0 vs Hugging Face",
                     hint="Any id of an eos list finishes a row (torch.isin); a finished row gets pad_token_id, not eos.")


def test_the_pad_id_defaults_to_the_first_eos_id(device):
    model, hf = models(1, device)
    prompt, mask = left_padded([2, 5], CFG.d_vocab, seed=90, pad=EOS, device=device)
    for seed in range(3):
        torch.manual_seed(seed)
        expected = hf_generate(hf, prompt, attention_mask=mask, max_new_tokens=10, do_sample=True, top_k=0, eos_token_id=[3, 7, EOS],
                                      pad_token_id=3)
        torch.manual_seed(seed)
        actual = generate_padded(model, prompt, mask, 10, eos_token_id=[3, 7, EOS], do_sample=True)
        check_tokens(actual, expected, what="sampled generation with eos_token_id=[3, 7, EOS] and no pad_token_id",
                     hint="Without pad_token_id finished rows get the first id of the eos list.")


def test_stops_once_every_row_has_finished(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([2, 4], CFG.d_vocab, seed=91, pad=EOS, device=device)
    with torch.no_grad():
        first = reference("padding.padded_forward")(model, prompt, mask)[:, -1].argmax(-1)
    tokens = generate_padded(model, prompt, mask, 6, eos_token_id=first.tolist(), pad_token_id=0, do_sample=False)
    assert tuple(tokens.shape) == (2, 5), (
        f"Both rows produce an end token at the first step: the result is the prompt plus one column, shape (2, 5); got "
        f"{tuple(tokens.shape)}. Stop as soon as every row has finished.")


@pytest.mark.parametrize("every_row_padded", [False, True], ids=["a full row", "every row padded"])
@pytest.mark.parametrize("prompt_len, new", [(CFG.n_ctx, 1), (30, 11), (2, CFG.n_ctx - 1)])
def test_going_past_the_context_is_an_error_up_front(prompt_len, new, every_row_padded, device):
    """The prompt's columns count, padding included: the positions past n_ctx would be written."""
    model = reference_gpt2(CFG, 0, str(device))
    lengths = [prompt_len - 1, 1] if every_row_padded else [prompt_len, 1]
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=92, pad=EOS, device=device, width=prompt_len)
    check_refused_up_front(lambda: generate_padded(model, prompt, mask, new, do_sample=False), model, prompt_len, new,
                           kata=KATA, what=f"generate_padded with {prompt_len} prompt columns and max_new_tokens={new}")


@pytest.mark.parametrize("lengths", [[30, 2], [29, 2]], ids=["a full row", "every row padded"])
def test_exactly_filling_the_context_works(lengths, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=93, pad=EOS, device=device, width=30)
    tokens = generate_padded(model, prompt, mask, 10, do_sample=False)
    assert tuple(tokens.shape) == (2, CFG.n_ctx), f"30 + 10 tokens fill n_ctx=40 exactly: got shape {tuple(tokens.shape)}"


def test_keeps_the_prompt_and_leaves_its_inputs_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([3, 1], CFG.d_vocab, seed=94, pad=EOS, device=device)
    tokens = generate_padded(model, prompt, mask, 4, do_sample=False)
    check_tokens(tokens[:, :3], prompt, what="the prompt part of the output", hint="Return the padded prompt, then the new tokens.")
    check_inputs_unchanged(lambda p, m: generate_padded(model, p, m, 3, do_sample=False), prompt, mask, kata=KATA,
                           what="generate_padded")


META_CASES = [dict(do_sample=False),
              dict(do_sample=False, eos_token_id=[EOS, 2], pad_token_id=0),
              dict(top_k=0, eos_token_id=EOS, pad_token_id=0, repetition_penalty=1.3)]


@pytest.mark.parametrize("options", META_CASES, ids=["greedy", "eos list and pad", "sampled, penalty"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the loop runs until it needs to know which rows ended: an EOS
    tensor, a `finished` mask or a mask column made on the CPU fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: generate_padded(model, prompt, torch.ones_like(prompt), 4, **options),
                       CFG, kata=KATA, what=f"padded generation with {options}")
