"""Tests for katas/padding/padded_beam_search.py (padded_beam_search), against Hugging Face's
generate(input_ids, attention_mask=..., num_beams=k) and against each prompt searched alone."""
import pytest
import torch

from harness.config import Config
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front
from harness.testing.dtypes import check_loop_on_meta
from harness.testing.oracles import hf_generate, hf_gpt2, likely_eos, reference_gpt2
from harness.testing.padding import left_padded, real_part
from harness.testing.properties import check_inputs_unchanged

KATA = "padding.padded_beam_search"
padded_beam_search = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
LENGTHS = [[3, 1, 5], [1, 4], [2, 6]]
HINT = ("For each prompt row, parts.beam_search with a model function that runs parts.padded_forward with the row's "
        "mask, then a 1 for every generated token; then the rows' results stacked in prompt order.")
CASES = [dict(length_penalty=1.0, early_stopping=False), dict(length_penalty=0.0, early_stopping=True),
         dict(length_penalty=2.0, early_stopping="never")]


def check_search(actual, expected_sequences, expected_scores, what: str, hint: str = HINT) -> None:
    __tracebackhide__ = True
    sequences, scores = actual
    check_tensor(sequences, expected_sequences, kata=KATA, what=f"sequences of {what}", axes="returned total_len", hint=hint)
    check_tensor(scores, expected_scores, kata=KATA, what=f"scores of {what}", axes="returned", atol=1e-4, rtol=1e-4, hint=hint)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_equals_hugging_face(lengths, case, device):
    number = LENGTHS.index(lengths) * len(CASES) + CASES.index(case)
    seed, num_beams = number % 3, 2 + number % 2
    model, hf = reference_gpt2(CFG, seed, str(device)), hf_gpt2(CFG, seed, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=seed + 60, pad=0, device=device)
    options = dict(num_beams=num_beams, max_new_tokens=6, eos_token_id=likely_eos(reference("padding.padded_forward")(model, prompt, mask)),
                   num_return_sequences=num_beams, **case)
    expected = hf_generate(hf, prompt, attention_mask=mask, do_sample=False, output_scores=True, return_dict_in_generate=True,
                           **options)
    check_search(padded_beam_search(model, prompt, mask, **options), expected.sequences, expected.sequences_scores,
                 what=f"beam search from prompts of lengths {lengths} with {options}, vs Hugging Face")


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
def test_each_row_is_searched_as_its_prompt_alone(lengths, device):
    model = reference_gpt2(CFG, 4, str(device))
    prompt, mask = left_padded(lengths, CFG.d_vocab, seed=70, pad=5, device=device)
    options = dict(num_beams=3, max_new_tokens=5, num_return_sequences=2)
    sequences, scores = padded_beam_search(model, prompt, mask, **options)
    check_tensor(sequences[:, : prompt.shape[1]], prompt.repeat_interleave(2, dim=0), kata=KATA, what="the padded prompts, "
                 "in front of the returned sequences", axes="returned prompt_len",
                 hint="Each prompt's num_return_sequences sequences come together, in prompt order, padding and all.")
    for row in range(len(lengths)):
        alone, alone_scores = reference("beam_search.beam_search")(model, real_part(prompt, mask, row), **options)
        what = f"the beams of row {row} (a prompt of {lengths[row]} tokens left-padded to {max(lengths)})"
        check_search((sequences[2 * row : 2 * row + 2, prompt.shape[1] :], scores[2 * row : 2 * row + 2]),
                     alone[:, lengths[row] :], alone_scores, what=what,
                     hint="A padded row must be searched exactly as its prompt alone would be: the padding is invisible "
                          "to every step, including the generated tokens' part of the mask.")


def test_rows_that_end_early_are_padded_with_eos(device):
    model = reference_gpt2(CFG, 1, str(device))
    prompt, mask = left_padded([2, 4], CFG.d_vocab, seed=80, pad=0, device=device)
    eos = likely_eos(reference("padding.padded_forward")(model, prompt, mask))
    sequences, _ = padded_beam_search(model, prompt, mask, num_beams=2, max_new_tokens=8, eos_token_id=eos, early_stopping=True)
    expected, _ = reference(KATA)(model, prompt, mask, num_beams=2, max_new_tokens=8, eos_token_id=eos, early_stopping=True)
    check_tensor(sequences, expected, kata=KATA, what="sequences that end at different lengths", axes="returned total_len",
                 hint="Pad the shorter rows on the right with eos_token_id, up to the longest one returned.")


@pytest.mark.parametrize("prompt_len, new", [(36, 5), (CFG.n_ctx, 1)])
def test_going_past_the_context_is_an_error_up_front(prompt_len, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([prompt_len - 3, prompt_len], CFG.d_vocab, seed=1, pad=0, device=device)
    check_refused_up_front(lambda: padded_beam_search(model, prompt, mask, num_beams=2, max_new_tokens=new), model, prompt_len,
                           new, kata=KATA, what=f"padded_beam_search with {prompt_len} prompt columns and max_new_tokens={new}")
    prompt, mask = left_padded([CFG.n_ctx - 4, CFG.n_ctx - 2], CFG.d_vocab, seed=1, pad=0, device=device)
    sequences, _ = padded_beam_search(model, prompt, mask, num_beams=2, max_new_tokens=2)
    assert sequences.shape[1] == CFG.n_ctx, f"prompt columns + max_new_tokens == n_ctx fits exactly.\n{stuck(KATA)}"


def test_refuses_more_returned_sequences_than_beams(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([2, 3], CFG.d_vocab, seed=2, pad=0, device=device)
    with pytest.raises(ValueError, match="num_return_sequences"):
        padded_beam_search(model, prompt, mask, num_beams=2, max_new_tokens=3, num_return_sequences=3)


@pytest.mark.parametrize("mask_dtype", [torch.int32], ids=str)
def test_a_mask_of_another_dtype_gives_the_same_beams(mask_dtype, device):
    model = reference_gpt2(CFG, 2, str(device))
    prompt, mask = left_padded([1, 3], CFG.d_vocab, seed=3, pad=0, device=device)
    options = dict(num_beams=2, max_new_tokens=4, num_return_sequences=2)
    check_search(padded_beam_search(model, prompt, mask.to(mask_dtype), **options), *reference(KATA)(model, prompt, mask, **options),
                 what=f"beam search with a {mask_dtype} attention mask",
                 hint="The generated tokens' part of the mask must take the mask's dtype and device (torch.ones_like, or dtype=mask.dtype).")


def test_leaves_its_inputs_unchanged(device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt, mask = left_padded([1, 3], CFG.d_vocab, seed=4, pad=0, device=device)
    check_inputs_unchanged(lambda p, m: padded_beam_search(model, p, m, num_beams=2, max_new_tokens=3), prompt, mask, kata=KATA,
                           what="padded_beam_search")


META_CASES = [dict(),
              dict(eos_token_id=5, num_return_sequences=2)]


@pytest.mark.parametrize("options", META_CASES, ids=["no eos", "eos"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the search runs until it needs values (which beams ended): a
    tensor made on the CPU before then (a rank mask, a pool of scores) fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: padded_beam_search(model, prompt, torch.ones_like(prompt), num_beams=2, max_new_tokens=3, **options),
                       CFG, kata=KATA, what=f"padded beam search with {options}")
