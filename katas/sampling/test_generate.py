"""Tests for katas/sampling/generate.py (generate), against Hugging Face's generate()."""
import pytest
import torch

from harness.config import Config
from harness.testing import reference, stuck, under_test
from harness.testing.asserts import check_tensor
from harness.testing.context import check_refused_up_front
from harness.testing.data import random_tokens
from harness.testing.dtypes import check_loop_on_meta
from harness.testing.oracles import hf_as_model, hf_generate, hf_generate_banning_ngrams, hf_gpt2, reference_gpt2
from harness.testing.properties import check_inputs_unchanged

KATA = "sampling.generate"
generate = under_test(KATA)
CFG = Config(d_model=16, n_heads=2, n_layers=2, d_vocab=12, n_ctx=40)
EOS = CFG.d_vocab - 1
SAMPLING = [dict(top_k=0), dict(top_k=4), dict(top_k=0, top_p=0.8), dict(temperature=0.7, top_k=6, top_p=0.9, repetition_penalty=1.3)]


@pytest.mark.parametrize("eos", [None, EOS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_hugging_face(seed, eos, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=seed + 10, device=device)
    expected = hf_generate(hf, prompt, max_new_tokens=12, do_sample=False, eos_token_id=eos)
    check_tensor(generate(hf_as_model(hf), prompt, 12, eos_token_id=eos, do_sample=False), expected, kata=KATA,
                 what="greedy generation", axes="batch total_len",
                 hint="Logits of the last position each step; finished rows get eos appended; stop when all have finished.")


@pytest.mark.parametrize("options", SAMPLING, ids=[str(o) for o in SAMPLING])
@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_with_the_same_seed_equals_hugging_face(seed, options, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=seed + 20, device=device)
    torch.manual_seed(seed)
    expected = hf_generate(hf, prompt, max_new_tokens=15, do_sample=True, eos_token_id=EOS, **options)
    torch.manual_seed(seed)
    actual = generate(hf_as_model(hf), prompt, 15, eos_token_id=EOS, do_sample=True, **options)
    check_tensor(actual, expected, kata=KATA, what=f"sampled generation with {options}", axes="batch total_len",
                 hint="Sample every row at every step (finished ones too, then overwrite them with eos), so that the "
                 "random draws stay in step with Hugging Face's.")


def test_stops_after_max_new_tokens_and_keeps_the_prompt(device):
    hf = hf_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, 5, CFG.d_vocab, seed=3, device=device)
    tokens = generate(hf_as_model(hf), prompt, 7, do_sample=False)
    assert tuple(tokens.shape) == (2, 12), f"5 prompt tokens + 7 new ones make 12, got shape {tuple(tokens.shape)}"
    check_tensor(tokens[:, :5], prompt, kata=KATA, what="the prompt part of the output")
    check_inputs_unchanged(lambda p: generate(hf_as_model(hf), p, 3, do_sample=False), prompt, kata=KATA, what="generate")


@pytest.mark.parametrize("prompt_len, new", [(30, 11), (CFG.n_ctx, 1), (1, CFG.n_ctx)])
def test_past_the_context_of_a_gpt2_is_refused_up_front(prompt_len, new, device):
    model = reference_gpt2(CFG, 0, str(device))
    prompt = random_tokens(2, prompt_len, CFG.d_vocab, seed=4, device=device)
    check_refused_up_front(lambda: generate(model, prompt, new, do_sample=False), model, prompt_len, new, kata=KATA,
                           what=f"generate with {prompt_len} prompt tokens and max_new_tokens={new}")
    fits = generate(model, random_tokens(2, CFG.n_ctx - 3, CFG.d_vocab, seed=4, device=device), 3, do_sample=False)
    assert fits.shape[1] == CFG.n_ctx, "prompt_len + max_new_tokens == n_ctx fits exactly"


GENERATE_PAIRS = [
    dict(do_sample=False, repetition_penalty=1.5),
    dict(do_sample=False, frequency_penalty=0.7),
    dict(do_sample=False, temperature=1.0, top_k=0, top_p=1.0),
    dict(temperature=0.7, top_k=0),
    dict(top_k=3, top_p=0.8),
    dict(temperature=1.0, repetition_penalty=1.0, frequency_penalty=0.0, top_k=5),
    dict(frequency_penalty=0.5, top_p=0.9),
]


@pytest.mark.parametrize("eos", [0, None, EOS], ids=["eos=0", "eos=None", "eos=last"])
@pytest.mark.parametrize("options", GENERATE_PAIRS, ids=[",".join(f"{k}={v}" for k, v in o.items()) for o in GENERATE_PAIRS])
def test_options_together_and_an_eos_id_of_zero_as_the_reference(options, eos, device):
    """Options two at a time (greedy included) and EOS id 0, a falsy id that still ends a row."""
    hf = hf_gpt2(CFG, 3, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=30, device=device)
    torch.manual_seed(7)
    expected = reference(KATA)(hf_as_model(hf), prompt, 10, eos_token_id=eos, **options)
    torch.manual_seed(7)
    actual = generate(hf_as_model(hf), prompt, 10, eos_token_id=eos, **options)
    check_tensor(actual, expected, kata=KATA, what=f"generation with eos_token_id={eos} and {options}", axes="batch total_len",
                 hint="Pass every option through to sample_next_token; test `eos_token_id is not None` (0 is a real id): "
                 "finished rows get eos appended, and generation stops when every row has finished.")


def test_an_eos_id_of_zero_ends_rows_as_hugging_face_does(device):
    hf = hf_gpt2(CFG, 1, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=11, device=device)
    torch.manual_seed(2)
    expected = hf_generate(hf, prompt, max_new_tokens=12, do_sample=True, top_k=0, eos_token_id=0)
    torch.manual_seed(2)
    check_tensor(generate(hf_as_model(hf), prompt, 12, eos_token_id=0, do_sample=True), expected, kata=KATA,
                 what="sampled generation with eos_token_id=0", axes="batch total_len",
                 hint="0 is a real token id: test `eos_token_id is not None`, not `if eos_token_id:`.")



@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_list_of_eos_ids_and_a_pad_id_other_than_eos_equal_hugging_face(seed, device):
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=seed + 30, device=device)
    for eos, pad in (([EOS, 2, 5], 0), ([3, 7, EOS], None), (4, 0)):
        torch.manual_seed(seed)
        expected = hf_generate(hf, prompt, max_new_tokens=12, do_sample=True, top_k=0, eos_token_id=eos, pad_token_id=pad)
        torch.manual_seed(seed)
        actual = generate(hf_as_model(hf), prompt, 12, eos_token_id=eos, pad_token_id=pad, do_sample=True)
        check_tensor(actual, expected, kata=KATA, what=f"sampled generation with eos_token_id={eos}, pad_token_id={pad}",
                     axes="batch total_len",
                     hint="Any id of an eos list ends a row (torch.isin); a finished row gets pad_token_id, or the first "
                     "eos id without one.")


@pytest.mark.parametrize("seed, sampling", [(0, dict(do_sample=True)), (1, dict())], ids=["do_sample=True", "sampling by default"])
def test_num_return_sequences_samples_each_prompt_that_many_times_as_hugging_face(seed, sampling, device):
    """Sampling is the default (as in sample_next_token): without do_sample, num_return_sequences > 1 is allowed."""
    hf = hf_gpt2(CFG, seed, str(device))
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=seed + 40, device=device)
    torch.manual_seed(seed)
    expected = hf_generate(hf, prompt, max_new_tokens=10, do_sample=True, top_k=0, eos_token_id=EOS, num_return_sequences=3)
    torch.manual_seed(seed)
    try:
        actual = generate(hf_as_model(hf), prompt, 10, eos_token_id=EOS, num_return_sequences=3, **sampling)
    except ValueError as error:
        pytest.fail(f"generate(..., num_return_sequences=3, {', '.join(f'{k}={v}' for k, v in sampling.items())}) raised "
                    f"ValueError({error}). Only do_sample=False makes the rows identical: sampling is the default.\n{stuck(KATA)}",
                    pytrace=False)
    check_tensor(actual, expected, kata=KATA, what="sampled generation with num_return_sequences=3", axes="returned total_len",
                 hint="Repeat each prompt row num_return_sequences times in a row (p0, p0, p0, p1, ...: "
                 "repeat_interleave), then generate them as one batch.")


def test_num_return_sequences_without_sampling_is_refused(device):
    prompt = random_tokens(2, 3, CFG.d_vocab, seed=50, device=device)
    with pytest.raises(ValueError):
        generate(hf_as_model(hf_gpt2(CFG, 0, str(device))), prompt, 4, do_sample=False, num_return_sequences=2)


META_CASES = [dict(do_sample=False), dict(do_sample=False, eos_token_id=[EOS, 2], pad_token_id=0),
              dict(do_sample=True, top_k=0, eos_token_id=EOS, pad_token_id=0, num_return_sequences=2)]


@pytest.mark.parametrize("options", META_CASES, ids=["greedy", "eos list and pad", "sampled, num_return_sequences"])
def test_makes_every_tensor_on_the_prompts_device(options):
    """On the meta device (no GPU needed) the loop runs until it needs to know which rows ended: an EOS
    tensor or a `finished` mask made on the CPU fails there, on every machine."""
    check_loop_on_meta(lambda model, prompt: generate(model, prompt, 4, **options),
                       CFG, kata=KATA, what=f"generate with {options}")


# ---------------------------------------------------------------- no_repeat_ngram_size

NGRAM_ENDS = [dict(), dict(eos_token_id=EOS), dict(eos_token_id=[EOS, 2, 5], pad_token_id=0)]
NGRAM_SAMPLING = [dict(top_k=0), dict(top_k=4), dict(temperature=0.7, top_k=6, top_p=0.9, repetition_penalty=1.3)]
NGRAM_HINT = ("Before choosing each token, ban (parts.ban_repeated_ngrams) on the logits, with the whole sequence so far "
              "(the prompt too) as the n-grams to avoid; then choose from the banned logits as before.")


def new_tokens_for(n: int) -> int:
    """n=1 bans every id already seen: 3 or 4 prompt ids and 7 new ones leave some of the 12 ids to sample."""
    return 7 if n == 1 else 14


@pytest.mark.parametrize("ends", NGRAM_ENDS, ids=["no eos", "eos", "eos list and pad"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_greedy_equals_hugging_face(n, ends, device):
    hf = hf_gpt2(CFG, n, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=n + 60, device=device)
    new = new_tokens_for(n)
    expected = hf_generate_banning_ngrams(hf, prompt, n, max_new_tokens=new, do_sample=False, **ends)
    actual = generate(hf_as_model(hf), prompt, new, do_sample=False, no_repeat_ngram_size=n, **ends)
    check_tensor(actual, expected, kata=KATA, what=f"greedy generation with no_repeat_ngram_size={n} and {ends}",
                 axes="batch total_len", hint=NGRAM_HINT)


@pytest.mark.parametrize("options", NGRAM_SAMPLING, ids=[str(o) for o in NGRAM_SAMPLING])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_sampled_with_the_same_seed_equals_hugging_face(n, options, device):
    """The ban comes before temperature, top-k and top-p (Hugging Face's order): a banned token takes none of top-k's places."""
    hf = hf_gpt2(CFG, n + 3, str(device))
    prompt = random_tokens(4, 3, CFG.d_vocab, seed=n + 70, device=device)
    new, ends = new_tokens_for(n), NGRAM_ENDS[n % len(NGRAM_ENDS)]
    expected = hf_generate_banning_ngrams(hf, prompt, n, seed=n, max_new_tokens=new, do_sample=True, **ends, **options)
    torch.manual_seed(n)
    actual = generate(hf_as_model(hf), prompt, new, do_sample=True, no_repeat_ngram_size=n, **ends, **options)
    check_tensor(actual, expected, kata=KATA, what=f"sampled generation with no_repeat_ngram_size={n}, {ends} and {options}",
                 axes="batch total_len", hint=NGRAM_HINT + " The ban must come before temperature, top-k and top-p.")


def test_no_repeat_ngram_size_with_num_return_sequences_equals_hugging_face(device):
    hf = hf_gpt2(CFG, 5, str(device))
    prompt = random_tokens(2, 4, CFG.d_vocab, seed=80, device=device)
    expected = hf_generate_banning_ngrams(hf, prompt, 2, seed=3, max_new_tokens=14, do_sample=True, top_k=0, eos_token_id=EOS,
                                          num_return_sequences=3)
    torch.manual_seed(3)
    actual = generate(hf_as_model(hf), prompt, 14, do_sample=True, eos_token_id=EOS, num_return_sequences=3, no_repeat_ngram_size=2)
    check_tensor(actual, expected, kata=KATA, what="sampled generation with num_return_sequences=3 and no_repeat_ngram_size=2",
                 axes="returned total_len", hint="Each returned row bans the n-grams of its own tokens: ban after repeating the prompts.")


@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sampled"])
def test_no_repeat_ngram_size_zero_bans_nothing(do_sample, device):
    hf = hf_gpt2(CFG, 2, str(device))
    prompt = random_tokens(3, 4, CFG.d_vocab, seed=61, device=device)
    torch.manual_seed(4)
    expected = hf_generate(hf, prompt, max_new_tokens=12, do_sample=do_sample, top_k=0, eos_token_id=EOS)
    torch.manual_seed(4)
    actual = generate(hf_as_model(hf), prompt, 12, do_sample=do_sample, eos_token_id=EOS, no_repeat_ngram_size=0)
    check_tensor(actual, expected, kata=KATA, what="generation with no_repeat_ngram_size=0", axes="batch total_len",
                 hint="0 (the default) means no ban at all: ban only when no_repeat_ngram_size > 0.")
